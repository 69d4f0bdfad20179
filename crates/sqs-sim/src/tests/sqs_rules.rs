//! The simulator against the rules of the SQS Developer Guide and API
//! Reference, one rule per test, each named after what it checks.

use std::sync::Arc;
use std::time::Duration;

use crate::{Deleted, ManualClock, QueueConfig, QueueDepth, SendMessage, SimError, Sqs, attribute};

const VT: Duration = Duration::from_secs(30);

fn sqs() -> (Arc<ManualClock>, Sqs) {
    let clock = Arc::new(ManualClock::new());
    (clock.clone(), Sqs::new(clock, 7))
}

/// `jobs.fifo` (visibility 30 s) redriving to `dlq.fifo` after `max` receives.
fn fifo_with_dlq(max: u32) -> (Arc<ManualClock>, Sqs) {
    let (clock, sqs) = sqs();
    sqs.create_queue(QueueConfig::fifo("dlq.fifo")).unwrap();
    sqs.create_queue(
        QueueConfig::fifo("jobs.fifo")
            .with_visibility_timeout(VT)
            .with_redrive("dlq.fifo", max),
    )
    .unwrap();
    (clock, sqs)
}

fn send_fifo(sqs: &Sqs, group: &str, body: &str) -> String {
    sqs.send(
        "jobs.fifo",
        SendMessage::new(body).group(group).deduplication_id(body),
    )
    .unwrap()
    .message_id
}

fn bodies(messages: &[crate::ReceivedMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

// ---------------------------------------------------------------- FIFO

#[test]
fn fifo_delivers_a_group_in_send_order_and_locks_it_while_in_flight() {
    let (_, sqs) = fifo_with_dlq(5);
    for body in ["a1", "a2", "a3"] {
        send_fifo(&sqs, "A", body);
    }
    let first = sqs.receive("jobs.fifo", 2).unwrap();
    assert_eq!(bodies(&first), ["a1", "a2"]);
    // a3 is visible, but its group has messages in flight.
    assert!(sqs.receive("jobs.fifo", 10).unwrap().is_empty());
    assert_eq!(
        sqs.depth("jobs.fifo").unwrap(),
        QueueDepth {
            visible: 1,
            in_flight: 2
        }
    );
    for m in &first {
        assert_eq!(
            sqs.delete("jobs.fifo", &m.receipt_handle).unwrap(),
            Deleted::Deleted
        );
    }
    assert_eq!(bodies(&sqs.receive("jobs.fifo", 10).unwrap()), ["a3"]);
}

#[test]
fn fifo_receive_takes_as_many_of_one_group_as_it_can_then_fills_from_others() {
    let (_, sqs) = fifo_with_dlq(5);
    for (group, body) in [
        ("A", "a1"),
        ("B", "b1"),
        ("A", "a2"),
        ("C", "c1"),
        ("B", "b2"),
        ("A", "a3"),
    ] {
        send_fifo(&sqs, group, body);
    }
    let batch = sqs.receive("jobs.fifo", 5).unwrap();
    assert_eq!(bodies(&batch), ["a1", "a2", "a3", "b1", "b2"]);
    // C was not touched by that receive and is served to the next one.
    assert_eq!(bodies(&sqs.receive("jobs.fifo", 5).unwrap()), ["c1"]);
}

#[test]
fn fifo_a_group_in_flight_is_not_served_to_another_consumer_but_other_groups_are() {
    let (_, sqs) = fifo_with_dlq(5);
    send_fifo(&sqs, "A", "a1");
    send_fifo(&sqs, "A", "a2");
    send_fifo(&sqs, "B", "b1");
    let consumer1 = sqs.receive("jobs.fifo", 1).unwrap();
    assert_eq!(bodies(&consumer1), ["a1"]);
    let consumer2 = sqs.receive("jobs.fifo", 10).unwrap();
    assert_eq!(bodies(&consumer2), ["b1"], "a2 waits behind a1 in flight");
}

#[test]
fn fifo_unfinished_messages_come_back_after_the_visibility_timeout_in_order() {
    let (clock, sqs) = fifo_with_dlq(5);
    for body in ["a1", "a2", "a3"] {
        send_fifo(&sqs, "A", body);
    }
    let batch = sqs.receive("jobs.fifo", 10).unwrap();
    // The consumer handled a1 only (a2 failed, a3 was blocked behind it).
    sqs.delete("jobs.fifo", &batch[0].receipt_handle).unwrap();
    clock.advance(VT - Duration::from_millis(1));
    assert!(sqs.receive("jobs.fifo", 10).unwrap().is_empty());
    assert_eq!(sqs.next_visible_at("jobs.fifo").unwrap(), Some(VT));
    clock.advance(Duration::from_millis(1));
    let again = sqs.receive("jobs.fifo", 10).unwrap();
    assert_eq!(bodies(&again), ["a2", "a3"]);
    assert!(again.iter().all(|m| m.receive_count == 2));
    assert_eq!(
        again[0].attributes[attribute::APPROXIMATE_RECEIVE_COUNT],
        "2"
    );
    let stats = sqs.stats("jobs.fifo").unwrap();
    assert_eq!((stats.deliveries, stats.redeliveries), (5, 2));
}

#[test]
fn fifo_records_carry_group_deduplication_id_and_growing_sequence_numbers() {
    let (_, sqs) = fifo_with_dlq(5);
    let sent = sqs
        .send(
            "jobs.fifo",
            SendMessage::new("x")
                .group("g")
                .deduplication_id("d1")
                .attribute("Source", "test"),
        )
        .unwrap();
    send_fifo(&sqs, "g", "y");
    let batch = sqs.receive("jobs.fifo", 10).unwrap();
    let a = &batch[0].attributes;
    assert_eq!(a[attribute::MESSAGE_GROUP_ID], "g");
    assert_eq!(a[attribute::MESSAGE_DEDUPLICATION_ID], "d1");
    assert_eq!(
        Some(&a[attribute::SEQUENCE_NUMBER]),
        sent.sequence_number.as_ref()
    );
    assert!(a[attribute::SEQUENCE_NUMBER] < batch[1].attributes[attribute::SEQUENCE_NUMBER]);
    assert_eq!(a[attribute::SEQUENCE_NUMBER].len(), 20);
    for key in [
        attribute::SENT_TIMESTAMP,
        attribute::APPROXIMATE_FIRST_RECEIVE_TIMESTAMP,
        attribute::SENDER_ID,
    ] {
        assert!(a.contains_key(key), "{key}");
    }
    assert_eq!(batch[0].message_attributes["Source"], "test");
    assert_eq!(batch[0].message_id, sent.message_id);
}

#[test]
fn fifo_sends_with_a_seen_deduplication_id_are_accepted_but_not_enqueued_for_five_minutes() {
    let (clock, sqs) = fifo_with_dlq(5);
    let first = sqs
        .send(
            "jobs.fifo",
            SendMessage::new("x").group("g").deduplication_id("d"),
        )
        .unwrap();
    let dup = sqs
        .send(
            "jobs.fifo",
            SendMessage::new("other body")
                .group("g")
                .deduplication_id("d"),
        )
        .unwrap();
    assert!(dup.deduplicated);
    assert_eq!(dup.message_id, first.message_id);
    // Even after the original is consumed and deleted.
    let m = sqs.receive("jobs.fifo", 10).unwrap();
    sqs.delete("jobs.fifo", &m[0].receipt_handle).unwrap();
    clock.advance(Duration::from_secs(299));
    assert!(
        sqs.send(
            "jobs.fifo",
            SendMessage::new("x").group("g").deduplication_id("d")
        )
        .unwrap()
        .deduplicated
    );
    assert_eq!(sqs.depth("jobs.fifo").unwrap().total(), 0);
    clock.advance(Duration::from_secs(1));
    let later = sqs
        .send(
            "jobs.fifo",
            SendMessage::new("x").group("g").deduplication_id("d"),
        )
        .unwrap();
    assert!(!later.deduplicated);
    assert_ne!(later.message_id, first.message_id);
    assert_eq!(sqs.stats("jobs.fifo").unwrap().deduplicated, 2);
}

#[test]
fn content_based_deduplication_uses_the_body_and_an_explicit_id_still_wins() {
    let (_, sqs) = sqs();
    sqs.create_queue(QueueConfig::fifo("c.fifo").with_content_based_deduplication(true))
        .unwrap();
    assert!(
        !sqs.send("c.fifo", SendMessage::new("same").group("g"))
            .unwrap()
            .deduplicated
    );
    assert!(
        sqs.send("c.fifo", SendMessage::new("same").group("h"))
            .unwrap()
            .deduplicated
    );
    assert!(
        !sqs.send("c.fifo", SendMessage::new("other").group("g"))
            .unwrap()
            .deduplicated
    );
    assert!(
        !sqs.send(
            "c.fifo",
            SendMessage::new("same")
                .group("g")
                .deduplication_id("explicit")
        )
        .unwrap()
        .deduplicated
    );
}

#[test]
fn fifo_sends_need_a_group_and_a_deduplication_id() {
    let (_, sqs) = fifo_with_dlq(5);
    let no_group = sqs.send("jobs.fifo", SendMessage::new("x").deduplication_id("d"));
    assert_eq!(no_group.unwrap_err().code(), "MissingParameter");
    let no_dedup = sqs.send("jobs.fifo", SendMessage::new("x").group("g"));
    assert_eq!(no_dedup.unwrap_err().code(), "InvalidParameterValue");
    let long_group = sqs.send(
        "jobs.fifo",
        SendMessage::new("x")
            .group("g".repeat(129))
            .deduplication_id("d"),
    );
    assert_eq!(long_group.unwrap_err().code(), "InvalidParameterValue");
    let empty = sqs.send(
        "jobs.fifo",
        SendMessage::new("").group("g").deduplication_id("d"),
    );
    assert_eq!(empty.unwrap_err().code(), "InvalidParameterValue");
    let blank_attribute = sqs.send(
        "jobs.fifo",
        SendMessage::new("x")
            .group("g")
            .deduplication_id("d")
            .attribute("A", ""),
    );
    assert_eq!(blank_attribute.unwrap_err().code(), "InvalidParameterValue");
    let reserved = sqs.send(
        "jobs.fifo",
        SendMessage::new("x")
            .group("g")
            .deduplication_id("d")
            .attribute("AWS.x", "v"),
    );
    assert_eq!(reserved.unwrap_err().code(), "InvalidParameterValue");
}

#[test]
fn fifo_refuses_a_receipt_handle_whose_visibility_timeout_expired() {
    let (clock, sqs) = fifo_with_dlq(5);
    send_fifo(&sqs, "g", "x");
    let old = sqs.receive("jobs.fifo", 1).unwrap().remove(0);
    clock.advance(VT);
    let err = sqs.delete("jobs.fifo", &old.receipt_handle).unwrap_err();
    assert!(matches!(err, SimError::ReceiptHandleExpired(_)), "{err}");
    assert!(err.to_string().contains("The receipt handle has expired"));
    // Received again: the old handle stays refused, the new one deletes.
    let new = sqs.receive("jobs.fifo", 1).unwrap().remove(0);
    assert!(sqs.delete("jobs.fifo", &old.receipt_handle).is_err());
    assert_eq!(
        sqs.delete("jobs.fifo", &new.receipt_handle).unwrap(),
        Deleted::Deleted
    );
    assert_eq!(sqs.stats("jobs.fifo").unwrap().expired_deletes, 2);
}

#[test]
fn a_receipt_handle_of_another_queue_or_made_up_is_invalid() {
    let (_, sqs) = fifo_with_dlq(5);
    for bad in [
        "nonsense",
        "dlq.fifo#1#1#0000000000000000",
        "jobs.fifo#x#1#0",
    ] {
        assert_eq!(
            sqs.delete("jobs.fifo", bad).unwrap_err().code(),
            "ReceiptHandleIsInvalid",
            "{bad}"
        );
    }
    assert_eq!(
        sqs.delete("nope.fifo", "x").unwrap_err().code(),
        "QueueDoesNotExist"
    );
}

#[test]
fn change_visibility_restarts_the_timeout_from_now_and_needs_a_message_in_flight() {
    let (clock, sqs) = fifo_with_dlq(5);
    send_fifo(&sqs, "g", "x");
    let m = sqs.receive("jobs.fifo", 1).unwrap().remove(0);
    clock.advance(Duration::from_secs(20));
    sqs.change_visibility("jobs.fifo", &m.receipt_handle, Duration::from_secs(60))
        .unwrap();
    clock.advance(Duration::from_secs(59));
    assert!(sqs.receive("jobs.fifo", 1).unwrap().is_empty());
    sqs.change_visibility("jobs.fifo", &m.receipt_handle, Duration::ZERO)
        .unwrap();
    let again = sqs.receive("jobs.fifo", 1).unwrap().remove(0);
    assert_eq!(again.receive_count, 2);
    clock.advance(VT);
    assert_eq!(
        sqs.change_visibility("jobs.fifo", &again.receipt_handle, VT)
            .unwrap_err(),
        SimError::MessageNotInflight
    );
}

#[test]
fn a_receive_can_override_the_visibility_timeout() {
    let (clock, sqs) = fifo_with_dlq(5);
    send_fifo(&sqs, "g", "x");
    sqs.receive_with_visibility("jobs.fifo", 1, Some(Duration::from_secs(2)))
        .unwrap();
    clock.advance(Duration::from_secs(2));
    assert_eq!(sqs.receive("jobs.fifo", 1).unwrap().len(), 1);
}

#[test]
fn receives_take_one_to_ten_messages() {
    let (_, sqs) = fifo_with_dlq(5);
    for max in [0, 11] {
        assert_eq!(
            sqs.receive("jobs.fifo", max).unwrap_err().code(),
            "InvalidParameterValue"
        );
    }
    for n in 0..15 {
        send_fifo(&sqs, &format!("g{n}"), &format!("m{n}"));
    }
    assert_eq!(sqs.receive("jobs.fifo", 10).unwrap().len(), 10);
    assert_eq!(sqs.receive("jobs.fifo", 10).unwrap().len(), 5);
}

// ---------------------------------------------------------------- redrive

#[test]
fn after_max_receive_count_receives_the_next_receive_moves_the_message_to_the_dlq() {
    let (clock, sqs) = fifo_with_dlq(3);
    let id = sqs
        .send(
            "jobs.fifo",
            SendMessage::new("poison")
                .group("g")
                .deduplication_id("p")
                .attribute("Kind", "poison"),
        )
        .unwrap()
        .message_id;
    send_fifo(&sqs, "g", "next");
    for n in 1..=3 {
        let batch = sqs.receive("jobs.fifo", 1).unwrap();
        assert_eq!(
            (batch[0].body.as_str(), batch[0].receive_count),
            ("poison", n)
        );
        clock.advance(VT);
    }
    // The fourth receive moves it and serves the group's next message instead.
    let batch = sqs.receive("jobs.fifo", 1).unwrap();
    assert_eq!(bodies(&batch), ["next"]);
    let dlq = sqs.messages("dlq.fifo").unwrap();
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].message_id, id, "the message id survives the move");
    assert_eq!(dlq[0].body, "poison");
    assert_eq!(dlq[0].group_id.as_deref(), Some("g"));
    assert_eq!(dlq[0].message_attributes["Kind"], "poison");
    assert_eq!(
        dlq[0].dead_letter_source_arn.as_deref(),
        Some("arn:aws:sqs:us-east-1:123456789012:jobs.fifo")
    );
    let received = sqs.receive("dlq.fifo", 10).unwrap();
    assert_eq!(
        received[0].attributes[attribute::DEAD_LETTER_QUEUE_SOURCE_ARN],
        "arn:aws:sqs:us-east-1:123456789012:jobs.fifo"
    );
    assert_eq!(sqs.stats("jobs.fifo").unwrap().moved_to_dlq, 1);
    assert_eq!(sqs.stats("dlq.fifo").unwrap().received_from_redrive, 1);
}

#[test]
fn a_message_deleted_on_its_last_allowed_receive_never_reaches_the_dlq() {
    let (clock, sqs) = fifo_with_dlq(2);
    send_fifo(&sqs, "g", "x");
    sqs.receive("jobs.fifo", 1).unwrap();
    clock.advance(VT);
    let last = sqs.receive("jobs.fifo", 1).unwrap().remove(0);
    assert_eq!(last.receive_count, 2);
    sqs.delete("jobs.fifo", &last.receipt_handle).unwrap();
    clock.advance(VT);
    assert!(sqs.receive("jobs.fifo", 1).unwrap().is_empty());
    assert!(sqs.messages("dlq.fifo").unwrap().is_empty());
}

#[test]
fn redrive_policies_are_checked_like_sqs_checks_them() {
    let (_, sqs) = sqs();
    sqs.create_queue(QueueConfig::standard("std-dlq")).unwrap();
    sqs.create_queue(QueueConfig::fifo("f-dlq.fifo")).unwrap();
    let cases = [
        QueueConfig::fifo("a.fifo").with_redrive("std-dlq", 5),
        QueueConfig::standard("b").with_redrive("f-dlq.fifo", 5),
        QueueConfig::fifo("c.fifo").with_redrive("missing.fifo", 5),
        QueueConfig::fifo("d.fifo").with_redrive("f-dlq.fifo", 0),
        QueueConfig::fifo("e.fifo").with_redrive("f-dlq.fifo", 1001),
        QueueConfig::fifo("no-suffix"),
        QueueConfig::standard("wrong.fifo"),
        QueueConfig::fifo("v.fifo").with_visibility_timeout(Duration::from_secs(43_201)),
        QueueConfig::standard("s").with_content_based_deduplication(true),
    ];
    for config in cases {
        let name = config.name.clone();
        let err = sqs.create_queue(config).unwrap_err();
        assert!(
            matches!(
                err,
                SimError::InvalidAttributeValue(_) | SimError::InvalidParameterValue(_)
            ),
            "{name}: {err}"
        );
    }
    sqs.create_queue(QueueConfig::fifo("ok.fifo").with_redrive("f-dlq.fifo", 5))
        .unwrap();
    // Same attributes again: fine. Different: QueueAlreadyExists.
    sqs.create_queue(QueueConfig::fifo("ok.fifo").with_redrive("f-dlq.fifo", 5))
        .unwrap();
    assert_eq!(
        sqs.create_queue(QueueConfig::fifo("ok.fifo"))
            .unwrap_err()
            .code(),
        "QueueAlreadyExists"
    );
}

// ---------------------------------------------------------------- standard

fn standard(seed: u64, duplicate_rate: f64) -> (Arc<ManualClock>, Sqs) {
    let clock = Arc::new(ManualClock::new());
    let sqs = Sqs::new(clock.clone(), seed);
    sqs.create_queue(QueueConfig::standard("dlq")).unwrap();
    sqs.create_queue(
        QueueConfig::standard("jobs")
            .with_visibility_timeout(VT)
            .with_redrive("dlq", 3)
            .with_duplicate_delivery_rate(duplicate_rate),
    )
    .unwrap();
    (clock, sqs)
}

fn drain_order(seed: u64) -> Vec<String> {
    let (_, sqs) = standard(seed, 0.0);
    for n in 0..30 {
        sqs.send("jobs", SendMessage::new(format!("m{n}"))).unwrap();
    }
    let mut order = Vec::new();
    loop {
        let batch = sqs.receive("jobs", 10).unwrap();
        if batch.is_empty() {
            return order;
        }
        for m in batch {
            sqs.delete("jobs", &m.receipt_handle).unwrap();
            order.push(m.body);
        }
    }
}

#[test]
fn standard_queues_deliver_everything_in_no_particular_order_decided_by_the_seed() {
    let order = drain_order(1);
    assert_eq!(order.len(), 30);
    let in_send_order: Vec<String> = (0..30).map(|n| format!("m{n}")).collect();
    assert_ne!(order, in_send_order);
    assert_eq!(order, drain_order(1), "same seed, same order");
    assert_ne!(order, drain_order(2));
    let mut sorted = order.clone();
    sorted.sort();
    let mut expected = in_send_order;
    expected.sort();
    assert_eq!(sorted, expected);
}

#[test]
fn standard_queues_refuse_deduplication_ids_and_do_not_lock_groups() {
    let (_, sqs) = standard(1, 0.0);
    let err = sqs
        .send("jobs", SendMessage::new("x").deduplication_id("d"))
        .unwrap_err();
    assert_eq!(err.code(), "InvalidParameterValue");
    sqs.send("jobs", SendMessage::new("a").group("g")).unwrap();
    sqs.send("jobs", SendMessage::new("b").group("g")).unwrap();
    assert_eq!(sqs.receive("jobs", 1).unwrap().len(), 1);
    assert_eq!(sqs.receive("jobs", 1).unwrap().len(), 1, "no group lock");
}

#[test]
fn standard_queues_ignore_an_old_receipt_handle_but_honour_the_latest_even_when_expired() {
    let (clock, sqs) = standard(1, 0.0);
    sqs.send("jobs", SendMessage::new("x")).unwrap();
    let old = sqs.receive("jobs", 1).unwrap().remove(0);
    clock.advance(VT);
    let latest = sqs.receive("jobs", 1).unwrap().remove(0);
    assert_eq!(
        sqs.delete("jobs", &old.receipt_handle).unwrap(),
        Deleted::Ignored
    );
    assert_eq!(sqs.depth("jobs").unwrap().total(), 1);
    clock.advance(VT);
    assert_eq!(
        sqs.delete("jobs", &latest.receipt_handle).unwrap(),
        Deleted::Deleted
    );
    assert_eq!(sqs.depth("jobs").unwrap().total(), 0);
    assert_eq!(
        sqs.delete("jobs", &latest.receipt_handle).unwrap(),
        Deleted::AlreadyGone
    );
}

#[test]
fn standard_queues_can_deliver_a_deleted_message_once_more() {
    let (clock, sqs) = standard(1, 1.0);
    sqs.send("jobs", SendMessage::new("x")).unwrap();
    let first = sqs.receive("jobs", 1).unwrap().remove(0);
    assert_eq!(
        sqs.delete("jobs", &first.receipt_handle).unwrap(),
        Deleted::Deleted
    );
    assert!(sqs.receive("jobs", 1).unwrap().is_empty());
    clock.advance(VT);
    let copy = sqs.receive("jobs", 1).unwrap().remove(0);
    assert_eq!((copy.body.as_str(), copy.receive_count), ("x", 2));
    sqs.delete("jobs", &copy.receipt_handle).unwrap();
    clock.advance(VT);
    assert!(sqs.receive("jobs", 1).unwrap().is_empty(), "only once");
    assert_eq!(sqs.stats("jobs").unwrap().lost_deletes, 1);
}

#[test]
fn standard_queues_redrive_too_and_keep_the_message() {
    let (clock, sqs) = standard(3, 0.0);
    let id = sqs.send("jobs", SendMessage::new("x")).unwrap().message_id;
    for _ in 0..3 {
        assert_eq!(sqs.receive("jobs", 10).unwrap().len(), 1);
        clock.advance(VT);
    }
    assert!(sqs.receive("jobs", 10).unwrap().is_empty());
    let dlq = sqs.messages("dlq").unwrap();
    assert_eq!(
        (dlq[0].message_id.as_str(), dlq[0].receive_count),
        (id.as_str(), 3)
    );
}

#[test]
fn the_same_seed_and_calls_give_the_same_ids_and_handles() {
    let run = || {
        let (clock, sqs) = fifo_with_dlq(5);
        let mut out = Vec::new();
        for n in 0..5 {
            out.push(send_fifo(&sqs, &format!("g{}", n % 2), &format!("m{n}")));
        }
        out.extend(
            sqs.receive("jobs.fifo", 10)
                .unwrap()
                .into_iter()
                .map(|m| m.receipt_handle),
        );
        clock.advance(VT);
        out.extend(
            sqs.receive("jobs.fifo", 10)
                .unwrap()
                .into_iter()
                .map(|m| m.receipt_handle),
        );
        out
    };
    assert_eq!(run(), run());
}

#[test]
fn the_in_flight_index_always_agrees_with_the_messages_themselves() {
    // Random sends, receives, deletes, visibility changes and clock moves on a
    // FIFO queue with redrive and a standard one with duplicate deliveries;
    // after each step the fast answers (depth, next visibility, group locks)
    // must equal what a scan of the stored messages says.
    for (fifo, seed) in [(true, 1), (false, 2), (true, 3)] {
        let clock = Arc::new(ManualClock::new());
        let sqs = Sqs::new(clock.clone(), seed);
        let (queue, dlq) = if fifo {
            ("q.fifo", "d.fifo")
        } else {
            ("q", "d")
        };
        let base = |name: &str| {
            if fifo {
                QueueConfig::fifo(name)
            } else {
                QueueConfig::standard(name)
            }
        };
        sqs.create_queue(base(dlq)).unwrap();
        let mut config = base(queue).with_visibility_timeout(VT).with_redrive(dlq, 3);
        if !fifo {
            config = config.with_duplicate_delivery_rate(0.2);
        }
        sqs.create_queue(config).unwrap();
        let mut rng = crate::SplitMix64::new(seed);
        let mut handles: Vec<String> = Vec::new();
        for step in 0..3000 {
            match rng.below(10) {
                0..3 => {
                    let mut m = SendMessage::new(format!("m{step}"));
                    if fifo {
                        m = m
                            .group(format!("g{}", rng.below(7)))
                            .deduplication_id(format!("d{step}"));
                    }
                    sqs.send(queue, m).unwrap();
                }
                3..5 => {
                    let max = 1 + rng.below(10);
                    let got = sqs.receive(queue, max).unwrap();
                    if fifo {
                        // No group twice in flight across receives.
                        let groups: Vec<_> = got.iter().filter_map(|m| m.group_id()).collect();
                        let held: Vec<_> = sqs
                            .messages(queue)
                            .unwrap()
                            .into_iter()
                            .filter(|m| m.in_flight)
                            .filter(|m| !got.iter().any(|g| g.message_id == m.message_id))
                            .filter_map(|m| m.group_id)
                            .collect();
                        for g in groups {
                            assert!(
                                !held.iter().any(|h| h == g),
                                "group {g} delivered while locked"
                            );
                        }
                    }
                    handles.extend(got.into_iter().map(|m| m.receipt_handle));
                }
                5..7 if !handles.is_empty() => {
                    let h = handles.swap_remove(rng.below(handles.len()));
                    let _ = sqs.delete(queue, &h);
                }
                7 if !handles.is_empty() => {
                    let h = &handles[rng.below(handles.len())];
                    let secs = rng.below(3) as u64 * 20;
                    let _ = sqs.change_visibility(queue, h, Duration::from_secs(secs));
                }
                _ => clock.advance(Duration::from_secs(rng.below(25) as u64)),
            }
            let stored = sqs.messages(queue).unwrap();
            let in_flight = stored.iter().filter(|m| m.in_flight).count();
            assert_eq!(
                sqs.depth(queue).unwrap(),
                QueueDepth {
                    visible: stored.len() - in_flight,
                    in_flight
                },
                "step {step}"
            );
            assert_eq!(sqs.next_visible_at(queue).unwrap().is_some(), in_flight > 0);
        }
        let stats = sqs.stats(queue).unwrap();
        assert!(
            stats.deliveries > 0 && stats.deleted > 0 && stats.moved_to_dlq > 0,
            "{stats:?}"
        );
    }
}
