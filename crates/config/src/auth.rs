//! Who may call the gRPC server: token verification (a JWKS or a development
//! HS256 secret), the services known by their client certificates, and whom each
//! service may act for.

use std::time::Duration;

use upload_domain::{Delegation, Role, Scope, SellerId};

use crate::source::{parsed, positive, secret};
use crate::{ConfigError, Source};

/// Token verification settings.
#[derive(Clone)]
pub struct AuthConfig {
    /// `UPLOAD_JWKS`: the issuers' public keys, a JWKS file path or an `http(s)://`
    /// URL; tokens are EdDSA, ES256 or RS256 and name their key by `kid`.
    pub jwks: Option<String>,
    /// `UPLOAD_JWKS_REFRESH_SECS`: how often the JWKS is read again (default 300).
    pub jwks_refresh: Duration,
    /// `UPLOAD_JWT_ISSUER`: the `iss` every token must carry (required with a JWKS).
    pub issuer: Option<String>,
    /// `UPLOAD_JWT_AUDIENCE`: the `aud` every token must carry (required with a JWKS).
    pub audience: Option<String>,
    /// `UPLOAD_JWT_SECRET`: an HS256 secret, accepted only where
    /// `UPLOAD_JWT_ALLOW_HS256=true` (local development and tests).
    pub jwt_secret: Option<String>,
    /// `UPLOAD_SERVICE_ACT_FOR`: whom each service may act for, and whether it may
    /// state a seller's group: `orders=seller;gateway=seller buyer group`. A
    /// service not named acts for no one.
    pub delegations: Vec<(SellerId, Delegation)>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("jwks", &self.jwks)
            .field("jwks_refresh", &self.jwks_refresh)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("delegations", &self.delegations)
            .finish()
    }
}

impl AuthConfig {
    /// Reads the auth settings: a JWKS with its issuer and audience, and/or an
    /// HS256 secret of at least 32 bytes where development opts in.
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let set = |name: &'static str| src.get(name).filter(|v| !v.trim().is_empty());
        let allow_hs256: bool = parsed(src, "UPLOAD_JWT_ALLOW_HS256", false)?;
        let jwt_secret = match (allow_hs256, set("UPLOAD_JWT_SECRET")) {
            (true, _) => {
                let secret = secret(src, "UPLOAD_JWT_SECRET", "HS256 secret for bearer tokens")?;
                if secret.len() < 32 {
                    return Err(ConfigError::Invalid {
                        name: "UPLOAD_JWT_SECRET",
                        value: "<redacted>".into(),
                        reason: "must be at least 32 bytes".into(),
                    });
                }
                Some(secret)
            }
            (false, Some(_)) => {
                return Err(ConfigError::Invalid {
                    name: "UPLOAD_JWT_SECRET",
                    value: "<redacted>".into(),
                    reason: "HS256 tokens are for local development: set UPLOAD_JWT_ALLOW_HS256=true there, or remove the secret and verify tokens with UPLOAD_JWKS".into(),
                });
            }
            (false, None) => None,
        };
        let jwks = set("UPLOAD_JWKS");
        if let Some(url) = jwks.as_deref() {
            check_jwks_url(url, parsed(src, "UPLOAD_JWKS_ALLOW_LOOPBACK_HTTP", false)?)?;
        }
        let delegations = match set("UPLOAD_SERVICE_ACT_FOR") {
            None => Vec::new(),
            Some(text) => parse_delegations(&text).map_err(|reason| ConfigError::Invalid {
                name: "UPLOAD_SERVICE_ACT_FOR",
                value: text.clone(),
                reason,
            })?,
        };
        let (issuer, audience) = (set("UPLOAD_JWT_ISSUER"), set("UPLOAD_JWT_AUDIENCE"));
        if jwks.is_some() {
            for (name, value) in [
                ("UPLOAD_JWT_ISSUER", &issuer),
                ("UPLOAD_JWT_AUDIENCE", &audience),
            ] {
                if value.is_none() {
                    return Err(ConfigError::Missing {
                        name,
                        hint: "tokens verified with UPLOAD_JWKS must name their issuer and audience",
                    });
                }
            }
        } else if jwt_secret.is_none() {
            return Err(ConfigError::Missing {
                name: "UPLOAD_JWKS",
                hint: "the issuers' JWKS (file or URL) that verifies bearer tokens",
            });
        }
        Ok(Self {
            jwks,
            jwks_refresh: Duration::from_secs(positive(
                "UPLOAD_JWKS_REFRESH_SECS",
                parsed(src, "UPLOAD_JWKS_REFRESH_SECS", 300)?,
            )?),
            issuer,
            audience,
            jwt_secret,
            delegations,
        })
    }
}

/// A JWKS location must be a file or an `https://` URL; plain `http://` only to
/// a loopback address, where `allow_loopback_http` (a test's opt-in) says so.
fn check_jwks_url(url: &str, allow_loopback_http: bool) -> Result<(), ConfigError> {
    let refuse = |reason: &str| ConfigError::Invalid {
        name: "UPLOAD_JWKS",
        value: url.to_owned(),
        reason: reason.to_owned(),
    };
    let Some(rest) = url.strip_prefix("http://") else {
        return if url.contains("://") && !url.starts_with("https://") {
            Err(refuse("a JWKS is a file path or an https:// URL"))
        } else {
            Ok(())
        };
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match (loopback, allow_loopback_http) {
        (true, true) => Ok(()),
        (true, false) => Err(refuse(
            "keys fetched over plain http can be swapped on the way: use https:// (tests may opt in to loopback http with UPLOAD_JWKS_ALLOW_LOOPBACK_HTTP=true)",
        )),
        (false, _) => Err(refuse(
            "keys fetched over plain http can be swapped on the way: use https://",
        )),
    }
}

/// `name=words;name=words`: each service's name (a service name, as its tokens
/// and certificates give it) with the words after it. Names are unique.
fn service_entries(text: &str, words: &str) -> Result<Vec<(SellerId, String)>, String> {
    let mut out: Vec<(SellerId, String)> = Vec::new();
    for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, rest) = entry
            .split_once('=')
            .ok_or_else(|| format!("{entry:?} is not name={words}"))?;
        let name: SellerId = name.trim().parse().map_err(|_| {
            format!(
                "{entry:?}: a service's name is letters, digits, - and _ (the name its tokens and certificates give)"
            )
        })?;
        if out.iter().any(|(n, _)| *n == name) {
            return Err(format!("{entry:?}: each service is named once"));
        }
        out.push((name, rest.to_owned()));
    }
    Ok(out)
}

/// `name=role role [group];name=...`: each service, the roles (`seller`,
/// `buyer`) it may act for, and `group` when it may state a seller's group.
fn parse_delegations(text: &str) -> Result<Vec<(SellerId, Delegation)>, String> {
    let mut out = Vec::new();
    for (name, words) in service_entries(text, "roles")? {
        let mut delegation = Delegation::default();
        for word in words.split_whitespace() {
            match word {
                "group" => delegation.states_group = true,
                _ => match word.parse::<Role>() {
                    Ok(role @ (Role::Seller | Role::Buyer)) => {
                        if !delegation.for_roles.contains(&role) {
                            delegation.for_roles.push(role);
                        }
                    }
                    _ => {
                        return Err(format!(
                            "{word:?} for {name}: a service acts for seller or buyer, and may be given group"
                        ));
                    }
                },
            }
        }
        if delegation.for_roles.is_empty() {
            return Err(format!(
                "{name} is given no role (seller, buyer) to act for"
            ));
        }
        out.push((name, delegation));
    }
    Ok(out)
}

/// `name=scope scope;name=scope`: each service known by its client certificate,
/// with its scopes.
pub(crate) fn parse_mtls_services(text: &str) -> Result<Vec<(SellerId, Vec<Scope>)>, String> {
    service_entries(text, "scopes")?
        .into_iter()
        .map(|(name, scopes)| {
            let scopes = scopes
                .split_whitespace()
                .map(|s| {
                    s.parse()
                        .map_err(|e: upload_domain::UnknownWord| e.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((name, scopes))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegations_name_roles_and_the_group_and_nothing_else() {
        use upload_domain::{Delegation, Role};
        assert_eq!(
            parse_delegations("orders=seller; gateway=seller buyer group").unwrap(),
            vec![
                (
                    "orders".parse().unwrap(),
                    Delegation {
                        for_roles: vec![Role::Seller],
                        states_group: false
                    }
                ),
                (
                    "gateway".parse().unwrap(),
                    Delegation {
                        for_roles: vec![Role::Seller, Role::Buyer],
                        states_group: true
                    }
                ),
            ]
        );
        for bad in [
            "orders",
            "orders=",
            "orders=group",
            "orders=ops",
            "orders=service",
            "orders=seller;orders=buyer",
            "=seller",
        ] {
            assert!(parse_delegations(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn a_jwks_url_is_https_and_plain_http_only_to_loopback_when_opted_in() {
        for ok in [
            "/etc/upload/jwks.json",
            "https://issuer.internal/.well-known/jwks.json",
        ] {
            assert!(check_jwks_url(ok, false).is_ok(), "{ok}");
        }
        for loopback in [
            "http://127.0.0.1:8080/jwks",
            "http://[::1]:9/jwks",
            "http://localhost/jwks",
        ] {
            assert!(check_jwks_url(loopback, false).is_err(), "{loopback}");
            assert!(check_jwks_url(loopback, true).is_ok(), "{loopback}");
        }
        for bad in [
            "http://issuer.internal/jwks",
            "http://127.0.0.1.evil.example/jwks",
            "http://10.0.0.1/jwks",
            "ftp://issuer/jwks",
            "file:///etc/jwks",
        ] {
            assert!(check_jwks_url(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_certificate_s_service_is_named_as_its_tokens_would_name_it() {
        let services =
            parse_mtls_services("orders=access:grant; catalogue-2=items:submit").unwrap();
        assert_eq!(services[0].0.as_str(), "orders");
        assert_eq!(services[1].0.as_str(), "catalogue-2");
        for bad in [
            "orders.internal=access:grant",
            "spiffe://cluster/orders=access:grant",
            "orders=access:grant;orders=items:submit",
            "orders=no-such-scope",
            "=access:grant",
        ] {
            assert!(parse_mtls_services(bad).is_err(), "{bad} accepted");
        }
    }
}
