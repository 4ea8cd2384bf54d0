//! The supervisor console end to end in a real browser: headless Chromium (Debian's), driven
//! over the DevTools protocol, signs in through the form, reads the review queue and decides
//! with the page's own keyboard shortcuts (j/k move, a starts an approval, the reason is typed,
//! Enter sends), and the deal's node moves. Skipped without Chromium, except under CI.

use crate::console::{
    chromium, current_node, deal_with_a_far_photo, local_exif_time, review_state,
};
use crate::evidence::{SITE, deal_at_site_survey, form, upload, uuid};
use crate::helpers::{PASSWORD, spawn_app};
use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::page::Page;
use futures_util::StreamExt;
use serde_json::Value;
use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` until it gives a value, or fails after 15 s saying what was awaited.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn eval_string(page: &Page, expression: &str) -> String {
    page.evaluate(expression)
        .await
        .unwrap_or_else(|e| panic!("evaluate {expression}: {e}"))
        .into_value::<Value>()
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn url_of(page: &Page) -> String {
    page.url().await.ok().flatten().unwrap_or_default()
}

/// Presses one key on the page, going to whatever has the focus (as a person's keyboard would).
async fn press(page: &Page, key: &str) {
    page.find_element("body")
        .await
        .expect("body")
        .press_key(key)
        .await
        .unwrap_or_else(|e| panic!("press {key}: {e}"));
}

async fn selected_item(page: &Page) -> String {
    eval_string(
        page,
        "(document.querySelector('article.item.selected') || {}).id || ''",
    )
    .await
}

#[tokio::test]
async fn in_chromium_a_supervisor_approves_an_outside_site_photo_with_the_keyboard() {
    let Some(chromium) = chromium("the browser test") else {
        return;
    };
    let started = Instant::now();
    let app = spawn_app().await;
    let (deal, far) = deal_with_a_far_photo(&app).await;
    assert_eq!(current_node(&app, &deal).await, "site_survey");
    // A second item in the queue, so that j/k have somewhere to go: the first deal's nameplate
    // photo, re-encoded, sent for a neighbour.
    let neighbour = deal_at_site_survey(&app, "杭州邻厂").await;
    let recycled: Value = upload(
        &app,
        &neighbour.rep,
        &neighbour.deal,
        "site_survey",
        form(
            &uuid(),
            &["nameplate"],
            crate::photos::with_exif(
                &crate::photos::jpeg(&crate::photos::scene(1, 640, 480), 70),
                &crate::photos::ExifSpec::phone(SITE.0, SITE.1, &local_exif_time(20)),
            ),
        ),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(recycled["verdict"], "rejected", "{recycled}");
    let other = recycled["id"].as_str().expect("id").to_owned();

    let profile = tempfile::tempdir().expect("profile dir");
    let config = BrowserConfig::builder()
        .chrome_executable(chromium)
        .no_sandbox()
        .user_data_dir(profile.path())
        .window_size(1280, 1000)
        .args([
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .build()
        .expect("browser config");
    let (mut browser, mut handler) = Browser::launch(config).await.expect("launch chromium");
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });

    // Sign in through the form, typing as a person would.
    let page = browser
        .new_page(app.url("/console/login"))
        .await
        .expect("open the sign-in page");
    page.find_element("#username")
        .await
        .expect("username field")
        .click()
        .await
        .expect("click")
        .type_str("supervisor_east")
        .await
        .expect("type the username");
    page.find_element("#password")
        .await
        .expect("password field")
        .click()
        .await
        .expect("click")
        .type_str(PASSWORD)
        .await
        .expect("type the password")
        .press_key("Enter")
        .await
        .expect("submit");
    eventually("the sign-in to leave the form", || async {
        let url = url_of(&page).await;
        (url.contains("/console") && !url.contains("/console/login")).then_some(())
    })
    .await;

    // The queue, with the far photo's reason and its distance in metres.
    page.goto(app.url("/console/reviews"))
        .await
        .expect("open the queue");
    let text = eval_string(&page, "document.body.innerText").await;
    assert!(text.contains("outside_site"), "{text}");
    let marker = "照片拍摄地点距离客户现场 ";
    let at = text.find(marker).unwrap_or_else(|| panic!("{text}")) + marker.len();
    let metres: u32 = text[at..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a distance after the sentence: {text}"));
    assert!((400..=600).contains(&metres), "{metres} m");
    assert!(text[at..].contains("米（允许 300 米）"), "{text}");

    // The page's script selects the first item; j/k move until the far photo is selected.
    eventually("the script to select an item", || async {
        (!selected_item(&page).await.is_empty()).then_some(())
    })
    .await;
    let want = format!("ev-{far}");
    let first = selected_item(&page).await;
    press(&page, "j").await;
    let second = selected_item(&page).await;
    assert_ne!(first, second, "j moves to the next item");
    press(&page, "k").await;
    assert_eq!(selected_item(&page).await, first, "k moves back");
    if first != want {
        press(&page, "j").await;
    }
    assert_eq!(selected_item(&page).await, want);

    // a starts an approval and puts the focus in that item's reason; type it, Enter sends.
    press(&page, "a").await;
    let focused = eval_string(
        &page,
        "(document.activeElement.closest('article.item') || {}).id + ' ' + document.activeElement.name",
    )
    .await;
    assert_eq!(focused, format!("{want} reason"));
    let reason = "Measured at the gate, checked by phone";
    let field = page
        .find_element(&format!("#{want} textarea[name=reason]"))
        .await
        .expect("reason field");
    field.type_str(reason).await.expect("type the reason");
    field.press_key("Enter").await.expect("Enter");
    eventually("the queue after the decision", || async {
        url_of(&page)
            .await
            .ends_with("/console/reviews?flash=approved")
            .then_some(())
    })
    .await;

    // Decided as typed, and the deal moved on; the neighbour's photo still waits.
    assert_eq!(review_state(&app, &far).await, "approved");
    assert_eq!(current_node(&app, &deal).await, "pain_points_confirmed");
    assert_eq!(review_state(&app, &other).await, "pending");
    let queue = eval_string(&page, "document.body.innerHTML").await;
    assert!(!queue.contains(&format!("id=\"{want}\"")));
    assert!(queue.contains(&format!("id=\"ev-{other}\"")));
    // The deal page shows the decision with the reason as typed.
    page.goto(app.url(&format!("/console/deals/{deal}")))
        .await
        .expect("open the deal page");
    let text = eval_string(&page, "document.body.innerText").await;
    assert!(text.contains(reason), "{text}");

    browser.close().await.expect("close chromium");
    browser.wait().await.expect("chromium exits");
    events.abort();
    eprintln!("browser test took {:?}", started.elapsed());
}
