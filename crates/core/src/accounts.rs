//! Accounts and API keys. A key is 32 random bytes shown once as
//! `tk_<base64url>`; only its SHA-256 is stored (the key has full entropy,
//! so a slow password hash would add latency to every request and no
//! security).

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tidings_store::{Account, ApiKeyRecord};
use tidings_types::{AccountId, ApiKeyId, SecretString};

use crate::{CoreError, ErrorCode, Tidings};

const KEY_PREFIX: &str = "tk_";

pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A newly made key: the record, and the secret shown exactly once.
#[derive(Debug)]
pub struct NewApiKey {
    pub record: ApiKeyRecord,
    pub key: SecretString,
}

impl Tidings {
    pub async fn create_account(
        &self,
        name: &str,
        contact_email: Option<String>,
    ) -> Result<Account, CoreError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(CoreError::invalid(
                ErrorCode::InvalidRequest,
                "an account name is 1 to 200 characters",
            ));
        }
        let account = Account {
            id: AccountId::new(),
            name: name.to_string(),
            contact_email,
            created_at: self.clock.now(),
        };
        self.store.create_account(&account).await?;
        Ok(account)
    }

    pub async fn list_accounts(&self) -> Result<Vec<Account>, CoreError> {
        Ok(self.store.list_accounts().await?)
    }

    /// An account's keys (never their secrets, which are not stored).
    pub async fn list_api_keys(&self, account: AccountId) -> Result<Vec<ApiKeyRecord>, CoreError> {
        Ok(self.store.list_api_keys(account).await?)
    }

    /// Revoke one of an account's keys; `NotFound` for a key it does not
    /// have.
    pub async fn revoke_api_key(&self, account: AccountId, key: ApiKeyId) -> Result<(), CoreError> {
        Ok(self.store.revoke_api_key(account, key).await?)
    }

    pub async fn create_api_key(
        &self,
        account: AccountId,
        name: &str,
    ) -> Result<NewApiKey, CoreError> {
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        let key = format!(
            "{KEY_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        let record = ApiKeyRecord {
            id: ApiKeyId::new(),
            account_id: account,
            name: name.to_string(),
            prefix: key[..10].to_string(),
            created_at: self.clock.now(),
        };
        self.store.create_api_key(&record, hash_key(&key)).await?;
        Ok(NewApiKey {
            record,
            key: SecretString::new(key),
        })
    }

    /// The account a bearer key belongs to.
    pub async fn authenticate(&self, key: &str) -> Result<AccountId, CoreError> {
        if !key.starts_with(KEY_PREFIX) || key.len() > 100 {
            return Err(CoreError::Unauthorized);
        }
        match self.store.find_api_key(hash_key(key)).await? {
            Some(rec) => Ok(rec.account_id),
            None => Err(CoreError::Unauthorized),
        }
    }

    /// On first start with an empty store: a default account and its key.
    pub async fn bootstrap(&self) -> Result<Option<(Account, NewApiKey)>, CoreError> {
        if !self.store.list_accounts().await?.is_empty() {
            return Ok(None);
        }
        let account = self.create_account("default", None).await?;
        let key = self.create_api_key(account.id, "default").await?;
        Ok(Some((account, key)))
    }
}
