"""Characters kept in the bundled quote font: printable ASCII, a few symbols quotes use, CJK
punctuation, full-width forms and the 3,755 hanzi of GB 2312 level 1 (the common characters).
Used by scripts/make-quote-font.sh; pass `2` to add GB 2312 level 2 (about +470 KB)."""
import sys

level2 = len(sys.argv) > 1
chars = set(chr(c) for c in range(0x20, 0x7F))
chars |= set("¥×÷·—–‘’“”…€℃№±°")
chars |= set(chr(c) for c in range(0x3000, 0x3020))
chars |= set(chr(c) for c in range(0xFF01, 0xFF5F))
last = 0xF7 if level2 else 0xD7
for hi in range(0xB0, last + 1):
    for lo in range(0xA1, 0xFF):
        try:
            chars.add(bytes([hi, lo]).decode("gb2312"))
        except UnicodeDecodeError:
            pass
print("".join(sorted(chars)))
