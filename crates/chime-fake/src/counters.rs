//! Per-operation request counters, so tests can assert how many HTTP attempts a retrying
//! client made and which faults it met.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The Chime SDK Identity operations the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Operation {
    /// `POST /app-instance-users`
    CreateAppInstanceUser,
    /// `GET /app-instance-users/{arn}`
    DescribeAppInstanceUser,
    /// `PUT /app-instance-users/{arn}`
    UpdateAppInstanceUser,
    /// `DELETE /app-instance-users/{arn}`
    DeleteAppInstanceUser,
    /// `GET /app-instance-users?app-instance-arn=...`
    ListAppInstanceUsers,
    /// `PUT /app-instance-users/{arn}/expiration-settings`
    PutAppInstanceUserExpirationSettings,
}

impl Operation {
    /// All six, in a fixed order.
    pub const ALL: [Operation; 6] = [
        Self::CreateAppInstanceUser,
        Self::DescribeAppInstanceUser,
        Self::UpdateAppInstanceUser,
        Self::DeleteAppInstanceUser,
        Self::ListAppInstanceUsers,
        Self::PutAppInstanceUserExpirationSettings,
    ];
}

/// Faults the fake injected into one operation's requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InjectedCounts {
    /// Requests delayed by configured latency.
    pub delayed: u64,
    /// Requests answered 429 `ThrottledClientException` by the TPS quota or a script.
    pub throttled: u64,
    /// Requests answered 500 `ServiceFailureException`.
    pub service_failures: u64,
    /// Requests answered 503 `ServiceUnavailableException`.
    pub service_unavailable: u64,
    /// Connections closed without a response.
    pub dropped: u64,
    /// Requests applied, then their connections closed without the response.
    pub lost_responses: u64,
    /// Requests answered 403 by an IAM denial.
    pub denied: u64,
    /// Requests answered by a scripted non-IAM 403 or an HTML 400 (scripts `forbidden`,
    /// `proxyBadRequest`).
    pub refused: u64,
}

/// Counters of one operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationCounts {
    /// Every HTTP request routed to the operation (each retry is one more attempt), including
    /// those that met an injected fault.
    pub attempts: u64,
    /// Requests answered with a 2xx status.
    pub succeeded: u64,
    /// Error responses by exception name (`"ConflictException"` ...), injected ones included.
    pub errors: BTreeMap<String, u64>,
    /// The injected faults among the attempts.
    pub injected: InjectedCounts,
}

/// A snapshot of every operation's counters; every operation is always present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters(pub BTreeMap<Operation, OperationCounts>);

impl Default for Counters {
    fn default() -> Self {
        Self(
            Operation::ALL
                .iter()
                .map(|op| (*op, OperationCounts::default()))
                .collect(),
        )
    }
}

impl Counters {
    /// The counters of `op`.
    pub fn get(&self, op: Operation) -> OperationCounts {
        self.0.get(&op).cloned().unwrap_or_default()
    }

    /// Attempts of `op`: the number a retry test usually asserts on.
    pub fn attempts(&self, op: Operation) -> u64 {
        self.0.get(&op).map_or(0, |c| c.attempts)
    }

    /// Attempts across all operations.
    pub fn total_attempts(&self) -> u64 {
        self.0.values().map(|c| c.attempts).sum()
    }

    pub(crate) fn entry(&mut self, op: Operation) -> &mut OperationCounts {
        self.0.entry(op).or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_operation_names_as_keys() {
        let mut counters = Counters::default();
        counters.entry(Operation::CreateAppInstanceUser).attempts = 3;
        *counters
            .entry(Operation::CreateAppInstanceUser)
            .errors
            .entry("ConflictException".into())
            .or_default() += 1;
        let json = serde_json::to_value(&counters).unwrap();
        assert_eq!(json["CreateAppInstanceUser"]["attempts"], 3);
        assert_eq!(
            json["CreateAppInstanceUser"]["errors"]["ConflictException"],
            1
        );
        assert_eq!(json["ListAppInstanceUsers"]["injected"]["dropped"], 0);
        assert_eq!(counters.attempts(Operation::CreateAppInstanceUser), 3);
        assert_eq!(counters.total_attempts(), 3);
    }
}
