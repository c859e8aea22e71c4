//! The issuers' public keys: a JWKS document read from a file or an in-cluster
//! URL, kept by `kid`, refreshed on a timer and whenever a token names a key not
//! seen yet (at most once per [`REFRESH_ON_MISS`]), so keys rotate without a
//! restart. Also the signing keys of local development and of the tests.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use tokio::time::Instant;

/// The least time between two refreshes a token with an unknown `kid` causes.
pub const REFRESH_ON_MISS: Duration = Duration::from_secs(10);
/// How long reading the JWKS may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest JWKS document read: a set of a few keys is a few kB.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// Where the JWKS document is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A file (mounted from a secret or config map).
    File(std::path::PathBuf),
    /// An `https://` URL (the issuer's endpoint; plain `http://` only to loopback
    /// in tests, as the configuration checks).
    Url(String),
}

impl JwksSource {
    /// A URL when `text` starts with a scheme, a file path otherwise.
    pub fn parse(text: &str) -> Self {
        if text.starts_with("http://") || text.starts_with("https://") {
            Self::Url(text.to_owned())
        } else {
            Self::File(text.into())
        }
    }

    async fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            Self::File(path) => tokio::fs::read(path)
                .await
                .map_err(|e| format!("cannot read the JWKS file {}: {e}", path.display())),
            Self::Url(url) => {
                let failed =
                    |e: &dyn std::fmt::Display| format!("cannot fetch the JWKS from {url}: {e}");
                // No redirects: the configured URL is the issuer's, and a redirect
                // could lead anywhere (another host, plain http).
                let client = reqwest::Client::builder()
                    .timeout(FETCH_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| e.to_string())?;
                let mut response = client.get(url).send().await.map_err(|e| failed(&e))?;
                let status = response.status();
                if status.is_redirection() {
                    return Err(failed(&format!(
                        "it answered {status}, a redirect, which is not followed: configure the URL it points to"
                    )));
                }
                if !status.is_success() {
                    return Err(failed(&format!("it answered {status}")));
                }
                let too_large = || failed(&format!("it sent more than {MAX_JWKS_BYTES} bytes"));
                if response
                    .content_length()
                    .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
                {
                    return Err(too_large());
                }
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(|e| failed(&e))? {
                    if body.len() + chunk.len() > MAX_JWKS_BYTES {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(body)
            }
        }
    }
}

/// One verification key of the set.
#[derive(Clone)]
pub struct VerifyingKey {
    /// The key.
    pub decoding: Arc<DecodingKey>,
    /// The one algorithm tokens signed with it may name.
    pub algorithm: Algorithm,
}

/// The algorithms a JWKS key may carry: asymmetric ones only.
fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
    let declared = match jwk.common.key_algorithm {
        Some(KeyAlgorithm::EdDSA) => Some(Algorithm::EdDSA),
        Some(KeyAlgorithm::ES256) => Some(Algorithm::ES256),
        Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
        Some(_) => return None,
        None => None,
    };
    // A key without `alg` is taken for the one algorithm its type allows here.
    let implied = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        _ => return None,
    };
    match declared {
        Some(alg) if alg != implied => None,
        _ => Some(implied),
    }
}

/// Reads a JWKS document: every key with a `kid` and an algorithm accepted here
/// (EdDSA on Ed25519, ES256 on P-256, RS256); the others are skipped and named.
pub fn parse_jwks(bytes: &[u8]) -> Result<(HashMap<String, VerifyingKey>, Vec<String>), String> {
    let set: JwkSet =
        serde_json::from_slice(bytes).map_err(|e| format!("the JWKS is not a JWK set: {e}"))?;
    let (mut keys, mut skipped) = (HashMap::new(), Vec::new());
    for jwk in &set.keys {
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        let usable = (!kid.is_empty())
            .then(|| algorithm_of(jwk))
            .flatten()
            .and_then(|alg| DecodingKey::from_jwk(jwk).ok().map(|key| (alg, key)));
        match usable {
            Some((algorithm, decoding)) => {
                keys.insert(
                    kid,
                    VerifyingKey {
                        decoding: Arc::new(decoding),
                        algorithm,
                    },
                );
            }
            None => skipped.push(if kid.is_empty() {
                "(no kid)".into()
            } else {
                kid
            }),
        }
    }
    Ok((keys, skipped))
}

/// The keys of the JWKS, refreshed.
pub struct KeySet {
    source: JwksSource,
    keys: RwLock<Arc<HashMap<String, VerifyingKey>>>,
    last_read: tokio::sync::Mutex<Instant>,
}

impl KeySet {
    /// Reads the JWKS at `source`; fails when it cannot be read or holds no usable key.
    pub async fn load(source: JwksSource) -> Result<Arc<Self>, String> {
        let set = Self {
            source,
            keys: RwLock::new(Arc::new(HashMap::new())),
            last_read: tokio::sync::Mutex::new(Instant::now()),
        };
        set.reread().await?;
        Ok(Arc::new(set))
    }

    /// The key named `kid`; an unknown one makes the set read again first, unless
    /// it was read less than [`REFRESH_ON_MISS`] ago.
    pub async fn key(&self, kid: &str) -> Option<VerifyingKey> {
        if let Some(key) = self.current().get(kid) {
            return Some(key.clone());
        }
        {
            let mut last = self.last_read.lock().await;
            if last.elapsed() < REFRESH_ON_MISS {
                return None;
            }
            *last = Instant::now();
        }
        if let Err(e) = self.reread().await {
            tracing::warn!(error = %e, "the JWKS could not be read again; keeping the keys held");
        }
        self.current().get(kid).cloned()
    }

    /// Reads the set again every `every`, for as long as the set is held.
    pub fn refresh_every(self: &Arc<Self>, every: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(set) = weak.upgrade() else { return };
                *set.last_read.lock().await = Instant::now();
                if let Err(e) = set.reread().await {
                    tracing::warn!(error = %e, "the JWKS could not be read again; keeping the keys held");
                }
            }
        });
    }

    fn current(&self) -> Arc<HashMap<String, VerifyingKey>> {
        Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reads the document and replaces the keys held (a set with no usable key
    /// is refused: the keys held stay).
    async fn reread(&self) -> Result<(), String> {
        let bytes = self.source.read().await?;
        let (keys, skipped) = parse_jwks(&bytes)?;
        if !skipped.is_empty() {
            tracing::warn!(
                ?skipped,
                "JWKS keys skipped: no kid, or not EdDSA/ES256/RS256"
            );
        }
        if keys.is_empty() {
            return Err(
                "the JWKS holds no usable key (EdDSA, ES256 or RS256, each with a kid)".into(),
            );
        }
        tracing::info!(keys = keys.len(), "JWKS read");
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(())
    }
}

/// A private key that signs tokens: the local stack's key pair (`upload-server
/// dev-keys`) and the tests' keys. Its `kid` is derived from its public key.
#[derive(Clone)]
pub struct SigningKey {
    encoding: EncodingKey,
    algorithm: Algorithm,
    kid: String,
}

impl SigningKey {
    /// A new Ed25519 key and its PKCS#8 form, to keep in a file.
    pub fn generate_ed25519() -> Result<(Self, Vec<u8>), String> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8v1(&rng)
            .map_err(|_| "cannot generate an Ed25519 key")?;
        let der = pkcs8.as_ref().to_vec();
        Ok((Self::from_ed25519_pkcs8(&der)?, der))
    }

    /// The Ed25519 key in `der` (PKCS#8 v1, as [`Self::generate_ed25519`] writes).
    pub fn from_ed25519_pkcs8(der: &[u8]) -> Result<Self, String> {
        Self::new(EncodingKey::from_ed_der(der), Algorithm::EdDSA)
    }

    /// A new P-256 key for ES256.
    pub fn generate_es256() -> Result<Self, String> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .map_err(|_| "cannot generate a P-256 key")?;
        Self::new(EncodingKey::from_ec_der(pkcs8.as_ref()), Algorithm::ES256)
    }

    /// A new 2048-bit RSA key for RS256.
    pub fn generate_rs256() -> Result<Self, String> {
        use aws_lc_rs::encoding::AsDer;
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| "cannot generate an RSA key")?;
        let pkcs8 = pair.as_der().map_err(|_| "cannot encode the RSA key")?;
        let pkcs1 = pkcs1_of_pkcs8(pkcs8.as_ref()).ok_or("cannot read the RSA key's PKCS#8")?;
        Self::new(EncodingKey::from_rsa_der(pkcs1), Algorithm::RS256)
    }

    fn new(encoding: EncodingKey, algorithm: Algorithm) -> Result<Self, String> {
        let public = Jwk::from_encoding_key(&encoding, algorithm).map_err(|e| e.to_string())?;
        let material = serde_json::to_vec(&public.algorithm).map_err(|e| e.to_string())?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &material);
        let kid = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            encoding,
            algorithm,
            kid,
        })
    }

    /// The key's id, as its JWK and its tokens carry it.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half, as a JWK with `kid`, `alg` and `use: sig`.
    pub fn public_jwk(&self) -> Result<Jwk, String> {
        let mut jwk =
            Jwk::from_encoding_key(&self.encoding, self.algorithm).map_err(|e| e.to_string())?;
        jwk.common.key_id = Some(self.kid.clone());
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        Ok(jwk)
    }

    /// Signs `claims` with this key, naming it in the header.
    pub fn sign<T: serde::Serialize>(&self, claims: &T) -> Result<String, String> {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| e.to_string())
    }
}

/// A JWKS document holding the public halves of `keys`.
pub fn jwks_document(keys: &[&SigningKey]) -> Result<String, String> {
    let keys = keys
        .iter()
        .map(|k| k.public_jwk())
        .collect::<Result<Vec<_>, _>>()?;
    serde_json::to_string_pretty(&JwkSet { keys }).map_err(|e| e.to_string())
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo`: SEQUENCE {
/// INTEGER version, SEQUENCE algorithm, OCTET STRING key }.
fn pkcs1_of_pkcs8(der: &[u8]) -> Option<&[u8]> {
    /// One DER element at the start of `input`: (tag, contents, rest).
    fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }
    let (0x30, info, _) = element(der)? else {
        return None;
    };
    let (0x02, _, rest) = element(info)? else {
        return None;
    };
    let (0x30, _, rest) = element(rest)? else {
        return None;
    };
    let (0x04, key, _) = element(rest)? else {
        return None;
    };
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_of_each_algorithm_verify_through_their_jwks() {
        let keys = [
            SigningKey::generate_ed25519().unwrap().0,
            SigningKey::generate_es256().unwrap(),
            SigningKey::generate_rs256().unwrap(),
        ];
        let document = jwks_document(&keys.iter().collect::<Vec<_>>()).unwrap();
        let (set, skipped) = parse_jwks(document.as_bytes()).unwrap();
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(set.len(), 3);
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Claims {
            sub: String,
            exp: u64,
        }
        for key in &keys {
            let token = key
                .sign(&Claims {
                    sub: "s".into(),
                    exp: u64::MAX / 4,
                })
                .unwrap();
            let found = &set[key.kid()];
            assert_eq!(found.algorithm, key.algorithm);
            let validation = jsonwebtoken::Validation::new(found.algorithm);
            jsonwebtoken::decode::<Claims>(&token, &found.decoding, &validation)
                .unwrap_or_else(|e| panic!("{:?}: {e}", key.algorithm));
        }
    }

    #[test]
    fn keys_without_a_kid_or_of_other_algorithms_are_skipped() {
        let key = SigningKey::generate_es256().unwrap();
        let mut no_kid = key.public_jwk().unwrap();
        no_kid.common.key_id = None;
        let mut hs = key.public_jwk().unwrap();
        hs.common.key_algorithm = Some(KeyAlgorithm::HS256);
        hs.common.key_id = Some("hmac".into());
        let document = serde_json::to_vec(&JwkSet {
            keys: vec![no_kid, hs, key.public_jwk().unwrap()],
        })
        .unwrap();
        let (set, skipped) = parse_jwks(&document).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(skipped, vec!["(no kid)".to_owned(), "hmac".to_owned()]);
        assert!(parse_jwks(b"{\"nope\": 1}").is_err());
    }

    #[test]
    fn an_ed25519_key_read_back_from_its_file_has_the_same_kid() {
        let (key, der) = SigningKey::generate_ed25519().unwrap();
        assert_eq!(
            SigningKey::from_ed25519_pkcs8(&der).unwrap().kid(),
            key.kid()
        );
    }
}
