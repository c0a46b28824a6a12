//! The contract of the sending side's rules: soft bounces are counted
//! per address, from outbound attempts and inbound reports alike, a
//! delivery starts the count over, and the soft-bounce rule decides the
//! suppression in the same transaction.

use std::sync::Arc;

use tidings_types::{AccountId, EventType, NewEvent};

use super::log::{message, recipient};
use super::{account, minutes, now, Fresh, SuppressesOn};
use crate::messages::*;
use crate::StoreError;

const TO: &str = "soft@y.test";

/// Send one message to [`TO`] and record its outcome: a soft failure
/// (deferred) or a delivery.
async fn attempt(m: &dyn MessageStore, a: AccountId, soft: bool, rule: Arc<SuppressesOn>) {
    m.accept_message(message(a), vec![recipient(a, TO)])
        .await
        .unwrap();
    let job = m
        .lease_outbound(now(), now() + minutes(5), 10)
        .await
        .unwrap()
        .pop()
        .expect("the new recipient is due");
    let (status, event, response) = if soft {
        (RecipientStatus::Deferred, EventType::Deferred, "451 later")
    } else {
        (RecipientStatus::Sent, EventType::Sent, "250 ok")
    };
    let result = OutboundResult {
        recipient_id: job.recipient_id,
        account_id: a,
        email: job.email,
        status,
        retry_at: None,
        response: response.into(),
        event: NewEvent::new(a, event, now(), Default::default()).unwrap(),
        suppress: None,
        soft_failure: soft,
    };
    m.complete_outbound(vec![result], rule).await.unwrap();
}

/// A soft bounce of [`TO`] that an inbound report tells of.
async fn reported(m: &dyn MessageStore, a: AccountId, rule: Arc<SuppressesOn>) {
    let fx = InboundEffects {
        events: vec![NewEvent::new(a, EventType::Deferred, now(), Default::default()).unwrap()],
        soft: vec![(a, TO.into())],
        ..Default::default()
    };
    m.record_inbound(fx, rule).await.unwrap();
}

/// The store counts an address's soft bounces in a row, whichever way
/// they come, starts over at a delivery, and suppresses the address
/// (with the rule's reason) exactly when the rule says so.
pub async fn the_soft_bounce_rule_is_applied_to_the_consecutive_soft_bounces_counted(fresh: Fresh) {
    let m = &*fresh.messages;
    let a = account(&*fresh.store, "a").await;
    let rule = SuppressesOn::count(3, "contract_soft_bounces");
    attempt(m, a, true, rule.clone()).await;
    reported(m, a, rule.clone()).await;
    assert!(matches!(
        m.get_suppression(a, TO.into()).await,
        Err(StoreError::NotFound)
    ));
    attempt(m, a, false, rule.clone()).await;
    assert_eq!(rule.asked(), [1, 2], "a delivery is no soft bounce");

    attempt(m, a, true, rule.clone()).await;
    reported(m, a, rule.clone()).await;
    assert!(matches!(
        m.get_suppression(a, TO.into()).await,
        Err(StoreError::NotFound)
    ));
    attempt(m, a, true, rule.clone()).await;
    assert_eq!(
        rule.asked(),
        [1, 2, 3],
        "the delivery started the count over"
    );
    let suppressed = m.get_suppression(a, TO.into()).await.unwrap();
    assert_eq!(suppressed.reason, "contract_soft_bounces");

    let other = account(&*fresh.store, "b").await;
    reported(m, other, rule.clone()).await;
    assert_eq!(rule.asked(), [1], "counted per account");
}
