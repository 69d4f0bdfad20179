//! Signing keys made at test time, the JWKs that publish them, and tokens
//! signed by them — including the forged kinds the validator must refuse.
//!
//! Signing is done here with ring directly (not through jsonwebtoken): the
//! functions only ever *verify*, and building the compact JWS by hand is what
//! lets a test send exactly the header and payload it wants. ring cannot
//! generate RSA keys, so the pure-Rust `rsa` crate makes them and hands ring
//! their PKCS#8; the workspace links no other crypto library (tests/e2e/tls_stack.rs).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::hmac;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
    RsaPublicKeyComponents,
};
use rsa::Generate;
use rsa::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};

/// An RSA (RS256) or EC P-256 (ES256) signing key with its `kid`.
pub struct TestKey {
    pub kid: String,
    inner: Inner,
}

enum Inner {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

impl TestKey {
    /// A fresh RSA key (RS256), of the `rsa` crate's default size (3072 bits).
    pub fn rsa(kid: &str) -> Self {
        let key = rsa::PrivateKey::generate();
        let der = key.to_pkcs8_der().expect("encode the RSA key as PKCS#8");
        Self {
            kid: kid.to_owned(),
            inner: Inner::Rsa(RsaKeyPair::from_pkcs8(der.as_bytes()).expect("ring reads the key")),
        }
    }

    /// A fresh EC P-256 key (ES256).
    pub fn ec(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("generate an EC key");
        Self {
            kid: kid.to_owned(),
            inner: Inner::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_ref(), &rng)
                    .expect("read the EC key"),
            ),
        }
    }

    /// The fixed RSA key that signed the tokens in `events/credential-exchange/`.
    /// A demo key, published on purpose: never trust it anywhere. Panics, as a test helper
    /// may; code outside tests (the CLI's local loop) takes [`TestKey::try_demo_rsa`].
    pub fn demo_rsa() -> Self {
        Self::try_demo_rsa().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`TestKey::demo_rsa`], a failure to read it as an error.
    pub fn try_demo_rsa() -> Result<Self, String> {
        let der = demo_der(DEMO_RSA_PKCS8, "RSA")?;
        let pair = RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| format!("the demo RSA key is not PKCS#8: {e}"))?;
        Ok(Self {
            kid: DEMO_RSA_KID.to_owned(),
            inner: Inner::Rsa(pair),
        })
    }

    /// The fixed EC key of the samples, like [`TestKey::demo_rsa`].
    pub fn demo_ec() -> Self {
        let der = demo_der(DEMO_EC_PKCS8, "EC").unwrap_or_else(|e| panic!("{e}"));
        Self {
            kid: DEMO_EC_KID.to_owned(),
            inner: Inner::Ec(
                EcdsaKeyPair::from_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &der,
                    &SystemRandom::new(),
                )
                .expect("demo EC key is PKCS#8"),
            ),
        }
    }

    /// The JWS algorithm this key signs with.
    pub fn alg(&self) -> &'static str {
        match self.inner {
            Inner::Rsa(_) => "RS256",
            Inner::Ec(_) => "ES256",
        }
    }

    /// The public JWK, as an IdP publishes it (`kid`, `alg`, `use: sig`).
    pub fn jwk(&self) -> Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        match &self.inner {
            Inner::Rsa(pair) => {
                let c = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
                json!({"kty": "RSA", "kid": self.kid, "alg": "RS256", "use": "sig",
                       "n": b64(&c.n), "e": b64(&c.e)})
            }
            Inner::Ec(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "kid": self.kid, "alg": "ES256", "use": "sig", "crv": "P-256",
                       "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
        }
    }

    /// The public key's DER (PKCS#1 `RSAPublicKey` for RSA, the uncompressed
    /// point for EC): what an alg-confusion attacker uses as an HMAC secret.
    pub fn public_key_der(&self) -> Vec<u8> {
        match &self.inner {
            Inner::Rsa(pair) => pair.public().as_ref().to_vec(),
            Inner::Ec(pair) => pair.public_key().as_ref().to_vec(),
        }
    }

    /// A token with header `{alg, typ: JWT, kid}` and these claims. Panics, as a test helper
    /// may; code outside tests takes [`TestKey::try_sign`].
    pub fn sign(&self, claims: &Value) -> String {
        self.try_sign(claims).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`TestKey::sign`], a signing failure as an error.
    pub fn try_sign(&self, claims: &Value) -> Result<String, String> {
        self.try_sign_with_header(
            &json!({"alg": self.alg(), "typ": "JWT", "kid": self.kid}),
            claims,
        )
    }

    /// A token with exactly this header and these claims, signed by this key.
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        self.try_sign_with_header(header, claims)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_sign_with_header(&self, header: &Value, claims: &Value) -> Result<String, String> {
        let input = signing_input(header, claims);
        let rng = SystemRandom::new();
        let sig = match &self.inner {
            Inner::Rsa(pair) => {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
                    .map_err(|e| format!("RSA signing failed: {e}"))?;
                sig
            }
            Inner::Ec(pair) => pair
                .sign(&rng, input.as_bytes())
                .map_err(|e| format!("EC signing failed: {e}"))?
                .as_ref()
                .to_vec(),
        };
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

/// `kid` of [`TestKey::demo_rsa`].
pub const DEMO_RSA_KID: &str = "demo-rsa-2026";
/// `kid` of [`TestKey::demo_ec`].
pub const DEMO_EC_KID: &str = "demo-ec-2026";

/// A JWKS document with these keys.
pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
}

/// `base64url(header).base64url(claims)`.
pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// An unsecured token (`alg: none`, empty signature).
pub fn unsigned(claims: &Value, kid: &str) -> String {
    format!(
        "{}.",
        signing_input(&json!({"alg": "none", "typ": "JWT", "kid": kid}), claims)
    )
}

/// An HS256 token with `secret` as the HMAC key (alg confusion when the
/// secret is an RSA public key).
pub fn hs256(claims: &Value, kid: &str, secret: &[u8]) -> String {
    let input = signing_input(&json!({"alg": "HS256", "typ": "JWT", "kid": kid}), claims);
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// `token` with its payload replaced by `claims` and the signature kept.
pub fn tampered(token: &str, claims: &Value) -> String {
    let mut parts = token.splitn(3, '.');
    let (header, _, sig) = (
        parts.next().unwrap_or_default(),
        parts.next(),
        parts.next().unwrap_or_default(),
    );
    format!(
        "{header}.{}.{sig}",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// Seconds since the epoch, for `exp`, `nbf` and `iat`.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

// PKCS#8 of the demo keys, generated once for the samples (published on purpose).
/// A demo key's PKCS#8 DER from its base64 `parts`; `kind` names it if they do not decode.
fn demo_der(parts: &[&str], kind: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(parts.concat())
        .map_err(|e| format!("the demo {kind} key is not base64: {e}"))
}

const DEMO_RSA_PKCS8: &[&str] = &[
    "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC1w2lEhjiYDXfCOn7lNbqc4u9cPGJHym87KT5b",
    "FaTGOBGRGfE53+Serc4+cCcD6Tix8TY484SLE6EPdIi/wi68IORyHz1K0QcC0rxjcJm/YmKLtztp7ciXsaN++941",
    "OwpwQ37eGw881D90gCFlfRbo9c/r5SRdQRjft46b/J5LS9x+51fDYRSofzYSdFATxqFHD4KfxkE8sFu4rim0397A",
    "kN9pKRxYrPHcQL/v+r98yQF7OW73VR3DjS/JejRHkDfrO2fXcELPyaQXEZdFMMF3cSvfapfz6M0AgS/+DJrvrx6q",
    "MBHcjr/ex3PGrshIE5LRI9ihYCzDmIZtkDnJ1apfAgMBAAECggEADn0NHxEz4arxKOJQyySFQ4wzWD7X9rEEPMsE",
    "1W3cPJCrlc1jlSFrr9pa3k9CTOWCR2zazZ9bqVpfNEQtwltQLl7Q1uf2ksgmrurtaV/IYaEOCeUJL2Bs5OqcBbs9",
    "8zBJnLlEm5+8jzS7+iVchCJ8eQVfFYamZ2iQ+wQ+seBpHcdDxrapIJJVgKPY5YJTs3voSBXCoTVj3182Q9fICNUH",
    "zBW3nbrygrdixHIrtQu20ah6Le9UXfUg8jvPqIJJcIGwkEsk5mQvBOJl2yTcXCV49djGctzlHS4eR2T4efcTBc2D",
    "3WQAWe7Z5Z3jprJRFYVjugpFlbcxI0YglzywrDF5wQKBgQDo3e37D547nzdz/lbwlvzYld4kKKXPmNSsunmyuTmO",
    "mti5th4K1LVmL8jvSPAd7+ExSG4908EJxmCVsyLn2v6MKncr+65A+3W1/gEs+FrjES0NUSVANmQtzC0GNHJ3jA98",
    "nRjBBqvNNYZ7aY/a5FhcFgPpqte4EG1cekiBPFDnXQKBgQDH0dv3mCYgohvGUxMe6J4VVfG53EVwOwh91rR4hWX8",
    "+xvvbetNODYAtHV0j/CRNrEh0eL+TqERqwFimS+beods7g+kdP25QBGKpBqh64VAPvo0uTsmok8iqJq8dh7LVXvg",
    "PhorsXdXlnJN/r1SJqX7j7TtAOJJ2NcUIBsIfCno6wKBgQDRgSlkoQ6JMZugXgk194GQEnWDLpbPCP7+T97Brudb",
    "p3Co1HJ+6BQz1XX/4i01oeWGg1W7hlG8S6AFzt7unhY5YNNK3OpPSG0EyXuhS+fpNkDEJGdROB41Hea8GF+LspUU",
    "Vfo5X5kdzLQrQDPOiXX9k0j951ihHxZlBxdIPk3DeQKBgASAEXguEQ3DGOUKke+sRYMtgFgzQc0ZR0OuRjpApt9f",
    "uG1YCGigz3aMmeiaJUzf8nVUiMw5cR84vrs9v/i8dbhaVDfb+qrlan+42nCzITklMfVmBpMELMwXCAUek+r4beXL",
    "AEPjp1Btrv1as2DaRfq4bda4omAPZiip4HH8eeUpAoGBAJTU82zv5M1tRYOBtENFux8qbHz3VSjA936BBs9JR7Jr",
    "pB9bHFQSjrFzKRwJDFSpMsWPd2wR6KIf9YB0+ZL4HhGxmXQTuB3Zi9BL6mr1fEIhe/96+f1awoHm0xjUX+nGux6t",
    "0Z5HI2JLgMcU8hTaSqeZNt9yKbpnTFzKrKbjGr5u",
];
const DEMO_EC_PKCS8: &[&str] = &[
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgz9TD1o61P4BDIQteCD68wBKh2rQNFI8EtYEiRRl0",
    "ZmuhRANCAARjYSqMXkTLUUZDmF9Lt2goEL2C5fPmg9adF7cD8PMQh+KerxwE+a+ZivMY8NI24naBIsS1xSrvpKAa",
    "YUQVEg9O",
];
