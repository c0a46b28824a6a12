//! The suppression list: addresses an account will not send to. Hard
//! bounces, complaints and unsubscribes add to it automatically; the API
//! lets an account look up, add and remove addresses.

use tidings_mail::Address;
use tidings_store::Suppression;
use tidings_types::payload::SuppressionReason;
use tidings_types::AccountId;

use crate::{CoreError, ErrorCode, Tidings};

fn key(email: &str) -> Result<String, CoreError> {
    Address::parse(email)
        .map(|a| a.normalized())
        .map_err(|e| CoreError::invalid(ErrorCode::InvalidAddress, e.to_string()))
}

impl Tidings {
    pub async fn list_suppressions(
        &self,
        account: AccountId,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<Suppression>, CoreError> {
        Ok(self
            .messages()?
            .list_suppressions(account, after, limit.clamp(1, 1000))
            .await?)
    }

    pub async fn get_suppression(
        &self,
        account: AccountId,
        email: &str,
    ) -> Result<Suppression, CoreError> {
        Ok(self
            .messages()?
            .get_suppression(account, key(email)?)
            .await?)
    }

    pub async fn add_suppression(
        &self,
        account: AccountId,
        email: &str,
        reason: Option<String>,
    ) -> Result<Suppression, CoreError> {
        let reason = reason.unwrap_or_else(|| SuppressionReason::Manual.as_str().into());
        if reason.is_empty() || reason.len() > 100 {
            return Err(CoreError::invalid(
                ErrorCode::InvalidRequest,
                "reason is 1 to 100 characters",
            ));
        }
        Ok(self
            .messages()?
            .add_suppression(account, key(email)?, reason, self.clock.now())
            .await?)
    }

    pub async fn remove_suppression(
        &self,
        account: AccountId,
        email: &str,
    ) -> Result<(), CoreError> {
        Ok(self
            .messages()?
            .remove_suppression(account, key(email)?)
            .await?)
    }
}
