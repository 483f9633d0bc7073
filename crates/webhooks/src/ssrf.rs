//! Server-side request forgery guard: webhook targets on loopback, private, link-local
//! and other non-public networks are refused unless the operator allows them
//! (`POCKET_WEBHOOKS_ALLOW_PRIVATE=true`, e.g. for tests or an internal deployment).
//!
//! The URL is checked when an endpoint is created, and every delivery resolves the
//! host through [`GuardedResolver`], which drops forbidden addresses, so a DNS name
//! that later points inside the network (rebinding) is refused too.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use url::{Host, Url};

/// Longest webhook URL accepted.
pub const MAX_URL_CHARS: usize = 2048;

/// Is `ip` somewhere a webhook must not go without permission?
///
/// The special-purpose ranges come from IANA's registries (RFC 6890 and its
/// successors, as kept by the `iprfc` crate), not from a hand-written list. IPv6 is
/// allowed only in global unicast space (`2000::/3`): that also refuses deprecated
/// forms that carry an IPv4 address inside (`::127.0.0.1`), site-local `fec0::/10`
/// and NAT64 `64:ff9b::/96`; 6to4 `2002::/16` and Teredo are special-purpose blocks
/// inside `2000::/3`. IPv4 also refuses multicast, which the registry leaves out.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => forbidden_v4(v4),
            None => forbidden_v6(v6),
        },
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    ip.is_multicast() || iprfc::RFC6890.contains(&IpAddr::V4(ip))
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let global_unicast = (ip.segments()[0] & 0xe000) == 0x2000;
    !global_unicast || iprfc::RFC6890.contains(&IpAddr::V6(ip))
}

/// Checks a webhook URL: `http(s)`, a host, no credentials, and — unless
/// `allow_private` — not a forbidden literal address or `localhost`.
pub fn check_url(raw: &str, allow_private: bool) -> Result<Url, String> {
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(format!("must be at most {MAX_URL_CHARS} characters"));
    }
    let url =
        Url::parse(raw).map_err(|_| "must be an absolute http:// or https:// URL".to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must use http:// or https://".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".into());
    }
    let forbidden = match url.host() {
        None => return Err("must name a host".into()),
        Some(Host::Ipv4(ip)) => is_forbidden(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => is_forbidden(IpAddr::V6(ip)),
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
    };
    if forbidden && !allow_private {
        return Err(
            "points to a loopback or private network, which this server does not allow".into(),
        );
    }
    Ok(url)
}

/// A DNS resolver for the delivery client that drops forbidden addresses.
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = format!("{}:0", name.as_str());
            let found: Vec<SocketAddr> = tokio::net::lookup_host(host).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| allow_private || !is_forbidden(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(
                    "the webhook host resolves only to addresses this server may not call".into(),
                );
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_internal_destinations() {
        for bad in [
            "http://127.0.0.1/hook",
            "http://localhost:8080/",
            "http://api.localhost/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[64:ff9b::a00:1]/",
            "http://[2002:7f00:1::]/",
            "http://[2002:a00:1::1]/",
            "http://[fec0::1]/",
            "http://[2001:db8::1]/",
            "http://[2001::1]/",
            "http://[ff02::1]/",
            "http://224.0.0.1/",
            "http://240.0.0.1/",
            "http://255.255.255.255/",
            "http://198.18.0.1/",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
            assert!(
                check_url(bad, true).is_ok(),
                "{bad} allowed when private targets are allowed"
            );
        }
        for bad in [
            "ftp://example.com/",
            "/relative",
            "http://user:pw@example.com/",
            "not a url",
        ] {
            assert!(check_url(bad, true).is_err(), "{bad}");
        }
        assert!(check_url("https://hooks.example.com/pocket?x=1", false).is_ok());
        assert!(check_url("http://93.184.216.34/", false).is_ok());
        assert!(check_url("http://[2606:2800:220:1:248:1893:25c8:1946]/", false).is_ok());
    }
}
