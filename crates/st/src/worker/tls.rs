//! Connecting to the database with libpq's `sslmode` semantics. rust-postgres understands only
//! disable, prefer and require and never checks a certificate by itself, so the DSN's TLS options
//! are read here and turned into an OpenSSL connector that checks what the mode asks for.
//!
//! | sslmode | encrypted | certificate chain checked | host name checked |
//! |---|---|---|---|
//! | disable | no | - | - |
//! | prefer (default) | if the server offers it | no | no |
//! | require | yes | no (as libpq, without a root certificate) | no |
//! | verify-ca | yes | yes, against `sslrootcert` | no |
//! | verify-full | yes | yes, against `sslrootcert` | yes |

use anyhow::{bail, Context, Result};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use postgres::config::SslMode;
use postgres::{Client, Config};
use postgres_openssl::MakeTlsConnector;

/// The TLS part of a DSN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// libpq's sslmode (default `prefer`).
    pub mode: String,
    /// CA certificates (default `~/.postgresql/root.crt` when a mode checks the chain).
    pub root_cert: Option<String>,
}

/// Splits the TLS options off a DSN (URL or key=value form), leaving what rust-postgres reads.
pub fn split(dsn: &str) -> (String, TlsOptions) {
    let mut tls = TlsOptions {
        mode: "prefer".into(),
        root_cert: None,
    };
    let mut take = |key: &str, value: &str| match key {
        "sslmode" => {
            tls.mode = value.to_string();
            true
        }
        "sslrootcert" => {
            tls.root_cert = Some(value.to_string());
            true
        }
        _ => false,
    };
    if let Some((base, query)) = dsn.split_once('?') {
        if base.contains("://") {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    !take(k, v)
                })
                .collect();
            let rest = if kept.is_empty() {
                String::new()
            } else {
                format!("?{}", kept.join("&"))
            };
            return (format!("{base}{rest}"), tls);
        }
    }
    if dsn.contains("://") {
        return (dsn.to_string(), tls);
    }
    let kept: Vec<&str> = dsn
        .split_whitespace()
        .filter(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            !take(k.trim(), v.trim().trim_matches('\''))
        })
        .collect();
    (kept.join(" "), tls)
}

/// Connects to `dsn` with TLS as its sslmode says.
pub fn connect(dsn: &str) -> Result<Client> {
    let (plain, tls) = split(dsn);
    let mut config: Config = plain
        .parse()
        .with_context(|| format!("cannot read the DSN {}", redact(dsn)))?;
    let (ssl_mode, verify_chain, verify_host) = match tls.mode.as_str() {
        "disable" => (SslMode::Disable, false, false),
        "allow" | "prefer" => (SslMode::Prefer, false, false),
        "require" => (SslMode::Require, false, false),
        "verify-ca" => (SslMode::Require, true, false),
        "verify-full" => (SslMode::Require, true, true),
        other => bail!(
            "sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full, got '{other}'"
        ),
    };
    config.ssl_mode(ssl_mode);
    let mut builder = SslConnector::builder(SslMethod::tls())?;
    if verify_chain {
        let root = match &tls.root_cert {
            Some(path) => path.clone(),
            None => steadytext::paths::home_dir()
                .join(".postgresql/root.crt")
                .display()
                .to_string(),
        };
        builder
            .set_ca_file(&root)
            .with_context(|| format!("cannot read the root certificate {root} (sslrootcert)"))?;
        builder.set_verify(SslVerifyMode::PEER);
    } else {
        builder.set_verify(SslVerifyMode::NONE);
    }
    let mut connector = MakeTlsConnector::new(builder.build());
    connector.set_callback(move |ssl, _| {
        ssl.set_verify_hostname(verify_host);
        Ok(())
    });
    config
        .connect(connector)
        .with_context(|| format!("cannot connect to {}", redact(dsn)))
}

/// The DSN without its password, for messages.
pub fn redact(dsn: &str) -> String {
    if let (Some(scheme_end), Some(at)) = (dsn.find("://"), dsn.rfind('@')) {
        let userinfo = &dsn[scheme_end + 3..at];
        if let Some(colon) = userinfo.find(':') {
            return format!(
                "{}{}:***{}",
                &dsn[..scheme_end + 3],
                &userinfo[..colon],
                &dsn[at..]
            );
        }
    }
    dsn.split_whitespace()
        .map(|kv| {
            if kv.starts_with("password=") {
                "password=***"
            } else {
                kv
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_options_come_off_both_dsn_forms() {
        let (rest, tls) =
            split("postgresql://u@h/db?sslmode=verify-full&sslrootcert=/c.pem&application_name=x");
        assert_eq!(rest, "postgresql://u@h/db?application_name=x");
        assert_eq!(tls.mode, "verify-full");
        assert_eq!(tls.root_cert.as_deref(), Some("/c.pem"));
        let (rest, tls) = split("host=h dbname=d sslmode=require");
        assert_eq!(rest, "host=h dbname=d");
        assert_eq!(tls.mode, "require");
        let (rest, tls) = split("postgresql://u@h/db");
        assert_eq!(
            (rest.as_str(), tls.mode.as_str()),
            ("postgresql://u@h/db", "prefer")
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgresql://u:secret@h/db"),
            "postgresql://u:***@h/db"
        );
        assert_eq!(redact("host=h password=secret"), "host=h password=***");
    }
}
