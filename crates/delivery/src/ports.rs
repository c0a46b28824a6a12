//! This crate's implementations of the ports `tidings-core` reaches webhook
//! I/O through: the guarded resolver answers the save-time host check, and
//! the shared client makes a test attempt exactly as a delivery would.

use tidings_core::ports::{AttemptReport, HostLookup, HostResolver, WebhookAttempts};
use tidings_types::{Clock, Event, Webhook};

use crate::client::{OutgoingRequest, WebhookClient};
use crate::guard::{GuardedResolver, ResolveError};
use crate::payload;
use crate::retry::Verdict;

#[async_trait::async_trait]
impl HostResolver for GuardedResolver {
    async fn lookup(&self, host: &str) -> HostLookup {
        match GuardedResolver::lookup(self, host).await {
            Ok(_) => HostLookup::Allowed,
            Err(ResolveError::Blocked { first, .. }) => HostLookup::Blocked(first),
            Err(_) => HostLookup::Unresolved,
        }
    }
}

#[async_trait::async_trait]
impl WebhookAttempts for WebhookClient {
    async fn attempt(
        &self,
        webhook: &Webhook,
        event: &Event,
        clock: &dyn Clock,
    ) -> Result<AttemptReport, String> {
        let settings = &webhook.settings;
        let payload = payload::build(&[event], settings).map_err(|e| e.to_string())?;
        let request = OutgoingRequest::new(
            payload,
            &event.id.to_string(),
            event.timestamp.timestamp(),
            &webhook.signing_secrets(event.timestamp),
            settings.headers.clone(),
        );
        let result = self.send(request).await;
        let delivered = result.verdict(clock.now()) == Verdict::Delivered;
        Ok(AttemptReport {
            delivered,
            status: result.status,
            error: result.error.map(|e| e.as_str().to_string()),
            duration: result.duration,
            // As the call log keeps it: the body's start, or the error in words.
            response: match (result.status, result.detail) {
                (None, Some(detail)) => detail,
                _ => result.response_snippet,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::{AddressClass, AddressPolicy};

    /// The port answers as the resolver does, through the trait core calls.
    #[tokio::test]
    async fn the_host_port_reports_what_the_guarded_resolver_finds() {
        let strict: &dyn HostResolver = &GuardedResolver::new(AddressPolicy::default());
        match strict.lookup("localhost").await {
            HostLookup::Blocked(first) => assert_eq!(first.class, AddressClass::Loopback),
            other => panic!("{other:?}"),
        }
        let open: &dyn HostResolver = &GuardedResolver::new(AddressPolicy {
            allow_loopback: true,
            allow_private: false,
        });
        assert_eq!(open.lookup("localhost").await, HostLookup::Allowed);
        // `.invalid` is reserved (RFC 2606) and never resolves.
        assert_eq!(
            strict.lookup("no-such-host.invalid").await,
            HostLookup::Unresolved
        );
    }
}
