mod auth;
mod basics;
mod data;
mod e2e;
mod limits;
mod support;
mod tls;
mod transaction;
