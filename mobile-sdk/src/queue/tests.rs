use super::*;

fn capture(id: &str) -> NewCapture {
    NewCapture {
        capture_id: id.into(),
        deal_id: "deal-1".into(),
        node_key: "site_survey".into(),
        tags: vec!["nameplate".into()],
        photo_file: format!("{id}.jpg"),
        manifest_json: format!(r#"{{"capture_id":"{id}","sha256":"ab"}}"#),
        signature: "sig".into(),
        sha256: "ab".into(),
        size_bytes: 3,
        phash: None,
        precheck: None,
        placed: None,
    }
}

#[test]
fn a_new_queue_is_at_the_current_schema_and_keeps_what_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path()).unwrap();
    q.insert(&capture("c1")).unwrap();
    let items = q.list().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].state, ItemState::Queued);
    assert_eq!(items[0].tags, vec!["nameplate".to_owned()]);
    let version: u32 = q
        .conn()
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::CURRENT);
}

#[test]
fn upgrading_a_version_1_queue_keeps_every_item_and_fills_the_new_columns() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join("queue.sqlite3")).unwrap();
        conn.execute_batch(schema::V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        for (i, state) in ["queued", "uploading", "accepted"].iter().enumerate() {
            conn.execute(
                "INSERT INTO captures VALUES (?1, 'deal-9', 'site_survey', ?2, ?3, 'sig', ?4,
                 '2026-11-20T08:00:0' || ?5 || 'Z')",
                params![
                    format!("v1-{i}"),
                    format!("v1-{i}.jpg"),
                    format!(r#"{{"capture_id":"v1-{i}","sha256":"{i:064}"}}"#),
                    state,
                    i.to_string(),
                ],
            )
            .unwrap();
        }
    }
    let q = Queue::open(dir.path()).unwrap();
    let items = q.list().unwrap();
    assert_eq!(items.len(), 3);
    let pending = q.pending().unwrap();
    assert_eq!(
        pending.len(),
        2,
        "queued and uploading items are still to send"
    );
    assert_eq!(pending[0].item.sha256, format!("{:064}", 0));
    assert_eq!(pending[1].item.state, ItemState::Uploading);
    assert_eq!(pending[0].signature, "sig");
    assert!(
        items
            .iter()
            .all(|i| i.tags.is_empty() && i.reasons.is_empty())
    );
    assert_eq!(items[0].updated_at, items[0].created_at);
    // And the new tables work.
    q.set_setting("device_id", Some("d")).unwrap();
    assert_eq!(q.setting("device_id").unwrap().as_deref(), Some("d"));
}

#[test]
fn a_queue_from_a_newer_sdk_is_refused_not_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join("queue.sqlite3")).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    assert!(matches!(Queue::open(dir.path()), Err(SdkError::Corrupt(_))));
}

#[test]
fn a_photo_is_deleted_only_after_the_server_acknowledged_it() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path()).unwrap();
    q.insert(&capture("c1")).unwrap();
    let photo = q.photos_dir().join("c1.jpg");
    std::fs::write(&photo, b"abc").unwrap();
    assert!(!q.delete_acknowledged_photo("c1").unwrap());
    assert!(photo.exists());
    q.record_outcome("c1", ItemState::Accepted, &[], Some("ev-1"))
        .unwrap();
    assert!(q.delete_acknowledged_photo("c1").unwrap());
    assert!(!photo.exists());
    let item = q.get("c1").unwrap().unwrap();
    assert!(item.photo_deleted);
    assert_eq!(item.evidence_id.as_deref(), Some("ev-1"));
    assert!(q.pending().unwrap().is_empty());
}

#[test]
fn old_orphan_photos_are_swept_and_recorded_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    {
        let q = Queue::open(dir.path()).unwrap();
        q.insert(&capture("c1")).unwrap();
        std::fs::write(q.photos_dir().join("c1.jpg"), b"abc").unwrap();
    }
    let photos = dir.path().join("photos");
    let orphan = photos.join("never-recorded.jpg.partial");
    std::fs::write(&orphan, b"half").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&orphan)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let fresh = photos.join("in-progress.jpg");
    std::fs::write(&fresh, b"new").unwrap();
    Queue::open(dir.path()).unwrap();
    assert!(!orphan.exists());
    assert!(
        fresh.exists(),
        "a capture in progress elsewhere is left alone"
    );
    assert!(photos.join("c1.jpg").exists());
}
