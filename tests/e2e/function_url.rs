//! Lambda Function URL events (payload format 2.0) for the credential exchange's tests.

use serde_json::{Value, json};

/// A Function URL event for `method /credentials` with these headers and body, as the
/// samples in `events/credential-exchange/` carry it.
pub fn request(method: &str, headers: Value, body: Option<&str>) -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/credentials", "rawQueryString": "",
        "headers": headers, "isBase64Encoded": false, "body": body,
        "requestContext": {
            "accountId": "anonymous", "apiId": "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6",
            "domainName": "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6.lambda-url.us-east-1.on.aws",
            "domainPrefix": "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6",
            "requestId": "3c1f2a7e-5b9d-4e8f-a6c2-1d0b9e8f7a65", "routeKey": "$default",
            "stage": "$default", "time": "20/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1_795_168_800_000_i64,
            "http": {"method": method, "path": "/credentials", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7",
                     "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Chat/1.0"}
        }
    })
}
