//! The one rule for the URLs signing keys come from: the configured issuer
//! and `jwksUri` URLs ([`super::issuers`]) and every URL the key cache GETs,
//! the `jwks_uri` a discovery document names included ([`super::keys`]).
//!
//! `https://`, or `http://` only on the loopback interface (a local IdP or
//! test server): keys fetched over plain HTTP from anywhere else could be
//! swapped by anyone on the path, and whoever swaps them signs tokens for any
//! user. A user name or password (`user@host`) is refused too: in
//! `http://127.0.0.1:80@idp.example.com/` the host is `idp.example.com`,
//! whatever the text before the `@` says.

/// What an `http://` URL to a host other than the loopback is told.
pub(crate) const HTTPS_ONLY: &str =
    "must start with https:// (http:// only for 127.0.0.1, localhost or [::1])";

/// A URL the key cache may GET: the transport rule above. A query is
/// allowed, as some IdPs publish their keys at one (Azure AD B2C's
/// `…/keys?p=<policy>`); it changes nothing about who can swap the keys.
pub(crate) fn check_fetchable(url: &str) -> Result<(), &'static str> {
    let (rest, plain) = if let Some(rest) = url.strip_prefix("https://") {
        (rest, false)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (rest, true)
    } else {
        return Err("must start with https://");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if plain && !is_loopback(authority) {
        return Err(HTTPS_ONLY);
    }
    if authority.is_empty() {
        return Err("has no host");
    }
    if authority.contains('@') {
        return Err("must not name a user or password (`@`)");
    }
    Ok(())
}

/// A configured issuer or `jwksUri` URL: fetchable, and without a query, a
/// fragment or spaces (`/.well-known/openid-configuration` is appended to an
/// issuer, and the issuer must equal the tokens' `iss` exactly).
pub(crate) fn check_url(url: &str) -> Result<(), &'static str> {
    check_fetchable(url)?;
    if url.contains(['?', '#']) || url.chars().any(char::is_whitespace) {
        return Err("must not contain a query, a fragment or spaces");
    }
    Ok(())
}

/// `127.0.0.1`, `localhost` or `[::1]`, with or without a port.
fn is_loopback(authority: &str) -> bool {
    let host = match authority.strip_prefix("[::1]") {
        Some(after) if after.is_empty() || after.starts_with(':') => "[::1]",
        _ => authority.split(':').next().unwrap_or_default(),
    };
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_only_on_the_loopback() {
        for ok in [
            "https://idp.example.com/keys",
            "https://idp.example.com:8443/keys?p=b2c_1_signin",
            "http://127.0.0.1:8080/idp/jwks.json",
            "http://localhost/jwks.json",
            "http://[::1]:80/jwks.json",
            "http://[::1]",
        ] {
            assert_eq!(check_fetchable(ok), Ok(()), "{ok}");
        }
        for (refused, why) in [
            ("http://idp.example.com/keys", HTTPS_ONLY),
            ("http://127.0.0.2:8080/keys", HTTPS_ONLY),
            ("http://localhost.example.com/keys", HTTPS_ONLY),
            ("http://[::1]@idp.example.com/keys", HTTPS_ONLY),
            (
                "http://127.0.0.1:80@idp.example.com/keys",
                "must not name a user or password (`@`)",
            ),
            (
                "https://user:pw@idp.example.com/keys",
                "must not name a user or password (`@`)",
            ),
            ("ftp://idp.example.com/keys", "must start with https://"),
            ("https:///keys", "has no host"),
            ("HTTP://idp.example.com", "must start with https://"),
        ] {
            assert_eq!(check_fetchable(refused), Err(why), "{refused}");
        }
    }

    #[test]
    fn configured_urls_have_no_query_fragment_or_spaces() {
        assert_eq!(check_url("https://idp.example.com/tenant"), Ok(()));
        for refused in [
            "https://idp.example.com/keys?p=x",
            "https://idp.example.com/#x",
            "https://idp.example.com/a b",
        ] {
            assert_eq!(
                check_url(refused),
                Err("must not contain a query, a fragment or spaces"),
                "{refused}"
            );
        }
        assert_eq!(check_url("http://idp.example.com"), Err(HTTPS_ONLY));
    }
}
