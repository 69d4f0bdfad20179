//! jsonwebtoken's signature verification backed by `ring`.
//!
//! jsonwebtoken 10+ takes its crypto from a [`CryptoProvider`] and ships
//! providers for aws-lc-rs and RustCrypto only. The Lambda binaries' TLS
//! stack (rustls) runs on ring, so this provider plugs ring in instead of a
//! second crypto library. It does no cryptography itself: it picks ring's
//! verification algorithm for each JWS algorithm, exactly as jsonwebtoken's
//! own aws-lc-rs provider does (ring and aws-lc-rs share this API).
//!
//! Verification only, and only the asymmetric algorithms the credential
//! exchange accepts: RS256/384/512, PS256/384/512 (RSA keys of 2048 to 8192
//! bits) and ES256/ES384. Signing, HMAC and EdDSA are refused, so nothing in
//! this process can be tricked into an HMAC check with a public key.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{self, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::signature as ring_sig;

/// The provider: verifiers for the asymmetric algorithms, no signers.
pub static RING_VERIFY_ONLY: CryptoProvider = CryptoProvider {
    signer_factory: no_signer,
    verifier_factory: verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Install [`RING_VERIFY_ONLY`] as jsonwebtoken's process-wide provider.
/// Idempotent and cheap; the token validator calls it before each decode.
pub fn install() {
    if CryptoProvider::try_get_default().is_none() {
        // Another thread may win the race; it installs the same provider.
        let _ = RING_VERIFY_ONLY.install_default();
    }
}

fn no_signer(_: &Algorithm, _: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    Err(ErrorKind::Provider("this process only verifies tokens; it never signs".into()).into())
}

/// How ring verifies one JWS algorithm.
#[derive(Clone, Copy)]
enum Check {
    Rsa(&'static ring_sig::RsaParameters),
    Ec(&'static ring_sig::EcdsaVerificationAlgorithm),
}

fn check_for(algorithm: Algorithm) -> Option<Check> {
    Some(match algorithm {
        Algorithm::RS256 => Check::Rsa(&ring_sig::RSA_PKCS1_2048_8192_SHA256),
        Algorithm::RS384 => Check::Rsa(&ring_sig::RSA_PKCS1_2048_8192_SHA384),
        Algorithm::RS512 => Check::Rsa(&ring_sig::RSA_PKCS1_2048_8192_SHA512),
        Algorithm::PS256 => Check::Rsa(&ring_sig::RSA_PSS_2048_8192_SHA256),
        Algorithm::PS384 => Check::Rsa(&ring_sig::RSA_PSS_2048_8192_SHA384),
        Algorithm::PS512 => Check::Rsa(&ring_sig::RSA_PSS_2048_8192_SHA512),
        Algorithm::ES256 => Check::Ec(&ring_sig::ECDSA_P256_SHA256_FIXED),
        Algorithm::ES384 => Check::Ec(&ring_sig::ECDSA_P384_SHA384_FIXED),
        _ => return None,
    })
}

struct RingVerifier {
    algorithm: Algorithm,
    check: Check,
    key: DecodingKey,
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let check = check_for(*algorithm).ok_or(ErrorKind::InvalidAlgorithm)?;
    if key.family() != algorithm.family() {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(RingVerifier {
        algorithm: *algorithm,
        check,
        key: key.clone(),
    }))
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, message: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let verified = match (self.check, self.key.kind()) {
            (Check::Rsa(params), DecodingKeyKind::RsaModulusExponent { n, e }) => {
                ring_sig::RsaPublicKeyComponents { n, e }.verify(params, message, sig)
            }
            // An uncompressed point (0x04 || x || y), as DecodingKey::from_jwk builds it.
            (Check::Ec(algorithm), DecodingKeyKind::SecretOrDer(point)) => {
                ring_sig::UnparsedPublicKey::new(algorithm, point).verify(message, sig)
            }
            _ => return Err(signature::Error::new()),
        };
        verified.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_eddsa_algorithms_have_no_verifier() {
        install();
        let secret = DecodingKey::from_secret(b"a public key used as an HMAC secret").unwrap();
        for alg in [
            Algorithm::HS256,
            Algorithm::HS384,
            Algorithm::HS512,
            Algorithm::EdDSA,
        ] {
            assert!(verifier(&alg, &secret).is_err(), "{alg:?}");
        }
    }

    #[test]
    fn a_key_of_the_wrong_family_is_refused() {
        let ec = DecodingKey::from_ec_components("AQ", "AQ").unwrap();
        assert!(verifier(&Algorithm::RS256, &ec).is_err());
        let rsa = DecodingKey::from_rsa_components("AQAB", "AQAB").unwrap();
        assert!(verifier(&Algorithm::ES256, &rsa).is_err());
        assert!(verifier(&Algorithm::RS256, &rsa).is_ok());
    }

    #[test]
    fn signing_is_refused() {
        install();
        let key = EncodingKey::from_secret(b"k").unwrap();
        assert!(no_signer(&Algorithm::RS256, &key).is_err());
    }
}
