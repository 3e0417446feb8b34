//! The table of `rpc` methods: name → handler. The chat layer registers its methods here.

use std::collections::HashMap;

use serde_json::value::RawValue;

use crate::auth::Role;
use crate::client_protocol::codes::ClientError;

/// Who calls.
#[derive(Debug)]
pub struct RpcContext<'a> {
    pub user: &'a str,
    pub client: &'a str,
    pub role: Role,
}

/// A method: the request's `data` (raw JSON) in, the reply's `data` out.
pub type RpcHandler =
    fn(&RpcContext<'_>, Option<&RawValue>) -> Result<Option<Box<RawValue>>, ClientError>;

#[derive(Default)]
pub struct RpcTable {
    methods: HashMap<&'static str, RpcHandler>,
}

impl RpcTable {
    pub fn register(&mut self, method: &'static str, handler: RpcHandler) {
        self.methods.insert(method, handler);
    }

    pub fn get(&self, method: &str) -> Option<RpcHandler> {
        self.methods.get(method).copied()
    }
}
