use super::*;

#[test]
fn when_a_resource_repeats_in_a_batch_then_only_its_newest_event_is_kept() {
    let events = [
        ("a", Some(3)),
        ("a", Some(3)),
        ("b", Some(1)),
        ("b", Some(2)),
        ("c", None),
        ("c", None),
        ("a", Some(2)),
    ];
    assert_eq!(
        repeats(&events),
        vec![
            Repeat::Kept,
            Repeat::Duplicate,
            Repeat::Stale,
            Repeat::Kept,
            Repeat::Kept,
            Repeat::Duplicate,
            Repeat::Stale
        ]
    );
}
