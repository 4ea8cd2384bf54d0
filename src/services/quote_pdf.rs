//! The printable rendition of an issued quote: an A4 PDF made in-process with `pdf-writer`,
//! Chinese text in an embedded CJK font subset (`subsetter`), so it reads the same on any
//! viewer, and a `ToUnicode` map so its text can be searched, copied and extracted.
//!
//! Font: the fullest TrueType CJK font found, in this order: `FIELDPROOF_QUOTE_FONT_PATH`,
//! Debian's WenQuanYi Micro Hei or Droid Sans Fallback when installed, else the subset of
//! WenQuanYi Micro Hei compiled into the binary (GB 2312 level 1: the 3,755 common hanzi; see
//! `assets/fonts/README.md`). A character no font covers is drawn as a blank box and reported
//! in [`RenderedPdf::missing_chars`], never silently dropped.

use anyhow::Context;
use fieldproof_domain::quote::{QuoteLine, QuoteTotals, format_yuan};
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The bundled subset, gzipped (385 KB; 704 KB unpacked on first use).
pub static BUNDLED_FONT_GZ: &[u8] =
    include_bytes!("../../assets/fonts/wqy-microhei-gb2312-l1.ttf.gz");

/// Fuller fonts used when installed (TrueType outlines only: what a CIDFontType2 can embed).
const SYSTEM_FONTS: [&str; 2] = [
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
];

/// A font's bytes and which face of a collection to use.
pub struct QuoteFont {
    data: Vec<u8>,
    index: u32,
    /// Where it came from, for logs and the quote's record.
    pub source: String,
}

/// One process-wide copy of the chosen font, reloaded only if the configured path changes.
static FONT_CACHE: Mutex<Option<(Option<PathBuf>, Arc<QuoteFont>)>> = Mutex::new(None);

fn usable(data: &[u8], index: u32) -> bool {
    ttf_parser::Face::parse(data, index).is_ok_and(|f| f.tables().glyf.is_some())
}

fn load_font(configured: Option<&Path>) -> anyhow::Result<QuoteFont> {
    let candidates = configured
        .map(Path::to_path_buf)
        .into_iter()
        .chain(SYSTEM_FONTS.iter().map(PathBuf::from));
    for path in candidates {
        match std::fs::read(&path) {
            Ok(data) if usable(&data, 0) => {
                return Ok(QuoteFont {
                    data,
                    index: 0,
                    source: path.display().to_string(),
                });
            }
            Ok(_) => {
                tracing::warn!(path = %path.display(), "not a TrueType font; quote PDFs ignore it")
            }
            Err(e) if configured == Some(path.as_path()) => {
                tracing::warn!(path = %path.display(), error = %e, "configured quote font unreadable; using the bundled one")
            }
            Err(_) => {}
        }
    }
    let mut data = Vec::new();
    flate2::read::GzDecoder::new(BUNDLED_FONT_GZ)
        .read_to_end(&mut data)
        .context("unpacking the bundled quote font")?;
    anyhow::ensure!(usable(&data, 0), "the bundled quote font does not parse");
    Ok(QuoteFont {
        data,
        index: 0,
        source: "bundled:wqy-microhei-gb2312-l1".into(),
    })
}

/// The font quote PDFs use (loaded once per process).
pub fn font(configured: Option<&Path>) -> anyhow::Result<Arc<QuoteFont>> {
    let mut cache = FONT_CACHE
        .lock()
        .map_err(|_| anyhow::anyhow!("quote font cache poisoned"))?;
    if let Some((path, font)) = cache.as_ref()
        && path.as_deref() == configured
    {
        return Ok(font.clone());
    }
    let font = Arc::new(load_font(configured)?);
    tracing::info!(source = %font.source, "quote PDF font loaded");
    *cache = Some((configured.map(Path::to_path_buf), font.clone()));
    Ok(font)
}

/// What the document shows: all text already decided by the caller.
pub struct QuoteDocument<'a> {
    pub seller: &'a str,
    pub buyer: &'a str,
    pub deal_title: &'a str,
    pub number: &'a str,
    pub revision: i32,
    /// `YYYY-MM-DD` (China time).
    pub issued_on: &'a str,
    pub valid_until: &'a str,
    pub currency: &'a str,
    pub tax_rate_bp: i64,
    pub lines: &'a [QuoteLine],
    pub totals: &'a QuoteTotals,
    pub content_hash: &'a str,
}

pub struct RenderedPdf {
    pub bytes: Vec<u8>,
    /// Characters the font could not draw (empty when all rendered).
    pub missing_chars: String,
}

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 42.0;

enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        glyphs: Vec<u16>,
    },
    Rule {
        x1: f32,
        y1: f32,
        x2: f32,
        y: f32,
        width: f32,
    },
    Band {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
    },
}

/// Lays text out with the font's own advances; remembers each glyph's character.
struct Layout<'f> {
    face: ttf_parser::Face<'f>,
    upem: f32,
    pages: Vec<Vec<Op>>,
    y: f32,
    chars: BTreeMap<u16, char>,
    missing: BTreeSet<char>,
}

impl<'f> Layout<'f> {
    fn glyphs(&mut self, text: &str) -> Vec<u16> {
        text.chars()
            .filter(|c| !c.is_control())
            .map(|c| match self.face.glyph_index(c) {
                Some(g) => {
                    self.chars.entry(g.0).or_insert(c);
                    g.0
                }
                None => {
                    if !c.is_whitespace() {
                        self.missing.insert(c);
                    }
                    0
                }
            })
            .collect()
    }

    fn advance(&self, glyph: u16, size: f32) -> f32 {
        let units = self
            .face
            .glyph_hor_advance(ttf_parser::GlyphId(glyph))
            .unwrap_or(0);
        f32::from(units) / self.upem * size
    }

    fn width(&mut self, text: &str, size: f32) -> f32 {
        let glyphs = self.glyphs(text);
        glyphs.iter().map(|g| self.advance(*g, size)).sum()
    }

    fn page(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn text(&mut self, x: f32, y: f32, size: f32, text: &str) {
        let glyphs = self.glyphs(text);
        self.page().push(Op::Text { x, y, size, glyphs });
    }

    fn text_right(&mut self, right: f32, y: f32, size: f32, text: &str) {
        let w = self.width(text, size);
        self.text(right - w, y, size, text);
    }

    fn rule(&mut self, y: f32, width: f32) {
        self.page().push(Op::Rule {
            x1: MARGIN,
            y1: y,
            x2: PAGE_W - MARGIN,
            y,
            width,
        });
    }

    /// Split `text` into lines no wider than `max` (any character may break: CJK has no spaces).
    fn wrap(&mut self, text: &str, size: f32, max: f32) -> Vec<String> {
        let mut lines = Vec::new();
        let mut current = String::new();
        let mut width = 0.0;
        for c in text.chars() {
            let w = self.width(&c.to_string(), size);
            if width + w > max && !current.is_empty() {
                lines.push(std::mem::take(&mut current));
                width = 0.0;
            }
            current.push(c);
            width += w;
        }
        if !current.is_empty() || lines.is_empty() {
            lines.push(current);
        }
        lines
    }

    /// Room for `height` more points on this page, or a new page.
    fn need(&mut self, height: f32) -> bool {
        if self.y - height < MARGIN + 40.0 {
            self.pages.push(Vec::new());
            self.y = PAGE_H - MARGIN;
            return true;
        }
        false
    }
}

/// Column layout of the line table: (header, left x, right-aligned?).
const COLUMNS: [(&str, f32, bool); 7] = [
    ("序号", MARGIN, false),
    ("产品编码 SKU", MARGIN + 28.0, false),
    ("产品描述 Description", MARGIN + 110.0, false),
    ("数量 Qty", MARGIN + 318.0, true),
    ("单价 Unit", MARGIN + 385.0, true),
    ("折扣 Disc.", MARGIN + 430.0, true),
    ("金额 Amount", PAGE_W - MARGIN, true),
];

fn table_header(layout: &mut Layout<'_>) {
    let y = layout.y;
    layout.page().push(Op::Band {
        x: MARGIN,
        y: y - 5.0,
        w: PAGE_W - 2.0 * MARGIN,
        h: 17.0,
    });
    for (label, x, right) in COLUMNS {
        if right {
            layout.text_right(x, y, 8.0, label);
        } else {
            layout.text(x, y, 8.0, label);
        }
    }
    layout.y -= 20.0;
}

fn percent(bp: i64) -> String {
    if bp % 100 == 0 {
        format!("{}%", bp / 100)
    } else {
        format!("{}.{:02}%", bp / 100, bp % 100)
    }
}

/// Render the quote. CPU-bound (a few milliseconds): call it off the async threads.
pub fn render(doc: &QuoteDocument<'_>, font: &QuoteFont) -> anyhow::Result<RenderedPdf> {
    let face = ttf_parser::Face::parse(&font.data, font.index).context("parsing the quote font")?;
    let upem = f32::from(face.units_per_em());
    let mut layout = Layout {
        face,
        upem,
        pages: Vec::new(),
        y: PAGE_H - MARGIN - 10.0,
        chars: BTreeMap::new(),
        missing: BTreeSet::new(),
    };
    let right = PAGE_W - MARGIN;
    layout.text(MARGIN, layout.y, 20.0, "报价单 QUOTATION");
    layout.text_right(right, layout.y + 4.0, 12.0, doc.number);
    layout.text_right(
        right,
        layout.y - 10.0,
        8.0,
        &format!("第 {} 版 Revision {}", doc.revision, doc.revision),
    );
    layout.y -= 30.0;
    layout.rule(layout.y + 10.0, 1.0);
    let facts = [
        ("报价方 Seller", doc.seller.to_owned()),
        ("客户 Customer", doc.buyer.to_owned()),
        ("项目 Project", doc.deal_title.to_owned()),
        ("报价单号 Number", doc.number.to_owned()),
        ("报价日期 Issued", doc.issued_on.to_owned()),
        ("有效期至 Valid until", doc.valid_until.to_owned()),
        (
            "币种 Currency",
            format!("{} (人民币，单位：元)", doc.currency),
        ),
    ];
    for (label, value) in facts {
        layout.text(MARGIN, layout.y, 9.0, label);
        for line in layout.wrap(&value, 10.0, 380.0) {
            layout.text(MARGIN + 110.0, layout.y, 10.0, &line);
            layout.y -= 15.0;
        }
    }
    layout.y -= 8.0;
    table_header(&mut layout);
    for (i, (line, amounts)) in doc.lines.iter().zip(&doc.totals.lines).enumerate() {
        let description = layout.wrap(line.description(), 9.0, 175.0);
        let sku = layout.wrap(line.sku(), 9.0, 78.0);
        let rows = description.len().max(sku.len()) as f32;
        if layout.need(rows * 13.0 + 4.0) {
            table_header(&mut layout);
        }
        let y = layout.y;
        layout.text(COLUMNS[0].1, y, 9.0, &(i + 1).to_string());
        for (k, part) in sku.iter().enumerate() {
            layout.text(COLUMNS[1].1, y - k as f32 * 13.0, 9.0, part);
        }
        for (k, part) in description.iter().enumerate() {
            layout.text(COLUMNS[2].1, y - k as f32 * 13.0, 9.0, part);
        }
        layout.text_right(COLUMNS[3].1, y, 9.0, &line.quantity().to_string());
        layout.text_right(COLUMNS[4].1, y, 9.0, &format_yuan(line.unit_price_fen()));
        let discount = if line.discount_bp() == 0 {
            "-".to_owned()
        } else {
            percent(line.discount_bp())
        };
        layout.text_right(COLUMNS[5].1, y, 9.0, &discount);
        layout.text_right(COLUMNS[6].1, y, 9.0, &format_yuan(amounts.net_fen));
        layout.y -= rows * 13.0 + 4.0;
        layout.rule(layout.y + 8.0, 0.3);
    }
    layout.need(110.0);
    layout.y -= 6.0;
    let sums = [
        ("折前合计 Gross", doc.totals.gross_fen),
        ("折扣 Discount", doc.totals.discount_fen),
        ("小计 Subtotal", doc.totals.subtotal_fen),
        (
            &*format!("税额 Tax ({})", percent(doc.tax_rate_bp)),
            doc.totals.tax_fen,
        ),
    ];
    for (label, fen) in sums {
        layout.text_right(right - 110.0, layout.y, 9.0, label);
        layout.text_right(right, layout.y, 9.0, &format_yuan(fen));
        layout.y -= 14.0;
    }
    layout.rule(layout.y + 9.0, 0.8);
    layout.y -= 4.0;
    layout.text_right(right - 110.0, layout.y, 11.0, "总计 Total (CNY)");
    layout.text_right(right, layout.y, 11.0, &format_yuan(doc.totals.total_fen));
    layout.y -= 34.0;
    layout.need(40.0);
    layout.text(
        MARGIN,
        layout.y,
        8.0,
        "本报价单由系统生成，编号唯一。请通过报价确认链接在线确认或拒绝。",
    );
    layout.y -= 12.0;
    layout.text(
        MARGIN,
        layout.y,
        7.0,
        &format!("内容校验 SHA-256: {}", doc.content_hash),
    );
    write_pdf(layout, font)
}

fn deflate(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

fn write_pdf(layout: Layout<'_>, font: &QuoteFont) -> anyhow::Result<RenderedPdf> {
    // `new` keeps glyph 0 (.notdef) as CID 0, so missing characters still show as a box.
    let mut remapper = subsetter::GlyphRemapper::new();
    for page in &layout.pages {
        for op in page {
            if let Op::Text { glyphs, .. } = op {
                for g in glyphs {
                    remapper.remap(*g);
                }
            }
        }
    }
    let subset = subsetter::subset(&font.data, font.index, &remapper)
        .map_err(|e| anyhow::anyhow!("subsetting the quote font: {e:?}"))?;
    let mut alloc = Ref::new(1);
    let catalog_id = alloc.bump();
    let tree_id = alloc.bump();
    let type0_id = alloc.bump();
    let cid_id = alloc.bump();
    let descriptor_id = alloc.bump();
    let file_id = alloc.bump();
    let cmap_id = alloc.bump();
    let font_name = Name(b"F1");
    let base_font = Name(b"FPQUOT+WenQuanYiMicroHei");
    let info = SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"Identity"),
        supplement: 0,
    };
    let mut pdf = Pdf::new();
    let page_ids: Vec<Ref> = layout.pages.iter().map(|_| alloc.bump()).collect();
    pdf.catalog(catalog_id).pages(tree_id);
    pdf.pages(tree_id)
        .kids(page_ids.iter().copied())
        .count(page_ids.len() as i32);
    let scale = |units: f32| units / layout.upem * 1000.0;
    for (page, page_id) in layout.pages.iter().zip(&page_ids) {
        let content_id = alloc.bump();
        let mut content = Content::new();
        for op in page {
            match op {
                Op::Text { x, y, size, glyphs } => {
                    let mut encoded = Vec::with_capacity(glyphs.len() * 2);
                    for g in glyphs {
                        let cid = remapper.get(*g).unwrap_or(0);
                        encoded.extend_from_slice(&cid.to_be_bytes());
                    }
                    content.set_fill_rgb(0.1, 0.1, 0.1);
                    content.begin_text();
                    content.set_font(font_name, *size);
                    content.next_line(*x, *y);
                    content.show(Str(&encoded));
                    content.end_text();
                }
                Op::Rule {
                    x1,
                    y1,
                    x2,
                    y,
                    width,
                } => {
                    content.set_stroke_rgb(0.6, 0.6, 0.6);
                    content.set_line_width(*width);
                    content.move_to(*x1, *y1);
                    content.line_to(*x2, *y);
                    content.stroke();
                }
                Op::Band { x, y, w, h } => {
                    content.set_fill_rgb(0.92, 0.94, 0.97);
                    content.rect(*x, *y, *w, *h);
                    content.fill_nonzero();
                }
            }
        }
        let compressed = deflate(&content.finish())?;
        pdf.stream(content_id, &compressed)
            .filter(Filter::FlateDecode);
        let mut p = pdf.page(*page_id);
        p.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        p.parent(tree_id);
        p.contents(content_id);
        p.resources().fonts().pair(font_name, type0_id);
        p.finish();
    }
    pdf.type0_font(type0_id)
        .base_font(base_font)
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid_id)
        .to_unicode(cmap_id);
    {
        let mut cid = pdf.cid_font(cid_id);
        cid.subtype(CidFontType::Type2);
        cid.base_font(base_font);
        cid.system_info(info);
        cid.font_descriptor(descriptor_id);
        cid.default_width(1000.0);
        cid.cid_to_gid_map_predefined(Name(b"Identity"));
        let widths: Vec<f32> = remapper
            .remapped_gids()
            .map(|old| {
                let units = layout
                    .face
                    .glyph_hor_advance(ttf_parser::GlyphId(old))
                    .unwrap_or(0);
                scale(f32::from(units))
            })
            .collect();
        cid.widths().consecutive(0, widths);
    }
    let bbox = layout.face.global_bounding_box();
    pdf.font_descriptor(descriptor_id)
        .name(base_font)
        .flags(FontFlags::SYMBOLIC)
        .bbox(Rect::new(
            scale(f32::from(bbox.x_min)),
            scale(f32::from(bbox.y_min)),
            scale(f32::from(bbox.x_max)),
            scale(f32::from(bbox.y_max)),
        ))
        .italic_angle(0.0)
        .ascent(scale(f32::from(layout.face.ascender())))
        .descent(scale(f32::from(layout.face.descender())))
        .cap_height(scale(f32::from(
            layout
                .face
                .capital_height()
                .unwrap_or(layout.face.ascender()),
        )))
        .stem_v(80.0)
        .font_file2(file_id);
    let compressed_font = deflate(&subset)?;
    pdf.stream(file_id, &compressed_font)
        .filter(Filter::FlateDecode)
        .pair(Name(b"Length1"), subset.len() as i32);
    let mut cmap = pdf_writer::types::UnicodeCmap::new(Name(b"Custom"), info);
    for (old, c) in &layout.chars {
        if let Some(new) = remapper.get(*old) {
            cmap.pair(new, *c);
        }
    }
    let cmap_bytes = cmap.finish();
    pdf.cmap(cmap_id, &cmap_bytes)
        .name(Name(b"Custom"))
        .system_info(info);
    Ok(RenderedPdf {
        bytes: pdf.finish(),
        missing_chars: layout.missing.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fieldproof_domain::quote::{QuoteLineInput, compute_totals};

    #[test]
    fn the_bundled_font_renders_chinese_and_reports_what_it_cannot() {
        let font = load_font(Some(Path::new("/nonexistent/font.ttf"))).unwrap();
        let lines = vec![
            QuoteLine::parse(QuoteLineInput {
                sku: "CP-200".into(),
                description: "离心泵 不锈钢".into(),
                quantity: 2,
                unit_price_fen: 1_250_000,
                discount_bp: 500,
            })
            .unwrap(),
        ];
        let totals = compute_totals(&lines, 1_300).unwrap();
        let doc = QuoteDocument {
            seller: "演示机械",
            buyer: "杭州恒力机械",
            deal_title: "泵站改造 𠀀",
            number: "Q2026-000001",
            revision: 1,
            issued_on: "2026-11-26",
            valid_until: "2026-12-31",
            currency: "CNY",
            tax_rate_bp: 1_300,
            lines: &lines,
            totals: &totals,
            content_hash: "ab",
        };
        let pdf = render(&doc, &font).unwrap();
        assert!(pdf.bytes.starts_with(b"%PDF-"));
        // A rare character outside GB 2312 is reported, not dropped silently (unless a full
        // system font supplied it).
        if font.source.starts_with("bundled") {
            assert_eq!(pdf.missing_chars, "𠀀");
        }
        // Only the glyphs used are embedded: far smaller than the 704 KB font.
        assert!(pdf.bytes.len() < 60_000, "{} bytes", pdf.bytes.len());
    }
}
