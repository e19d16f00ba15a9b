//! Special-use addresses (RFC 6890 and the IANA special-purpose address
//! registries it set up): what a fetch on behalf of an unknown client must
//! never reach (draft-ietf-oauth-client-id-metadata-document §6.5).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is a special-use address: anything but a global unicast
/// address. IPv4: `0.0.0.0/8`, `10/8`, `100.64/10` (shared, CGNAT),
/// `127/8`, `169.254/16`, `172.16/12`, `192.0.0/24`, `192.0.2/24`,
/// `192.88.99/24`, `192.168/16`, `198.18/15`, `198.51.100/24`,
/// `203.0.113/24`, `224/4` (multicast), `240/4` (reserved, broadcast).
/// IPv6: everything outside `2000::/3`, and inside it `2001::/23` (IETF
/// protocol assignments: Teredo, benchmarking, ORCHID), `2001:db8::/32`;
/// IPv4 embedded in IPv6 (`::ffff:0:0/96` mapped, `64:ff9b::/96` NAT64,
/// `2002::/16` 6to4) is judged by its IPv4 address.
pub fn is_special_use(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_special(v4),
        IpAddr::V6(v6) => v6_special(v6),
    }
}

/// Loopback in either family (IPv4-mapped loopback included).
pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn v4_special(ip: Ipv4Addr) -> bool {
    const NETS: [([u8; 4], u32); 15] = [
        ([0, 0, 0, 0], 8),
        ([10, 0, 0, 0], 8),
        ([100, 64, 0, 0], 10),
        ([127, 0, 0, 0], 8),
        ([169, 254, 0, 0], 16),
        ([172, 16, 0, 0], 12),
        ([192, 0, 0, 0], 24),
        ([192, 0, 2, 0], 24),
        ([192, 88, 99, 0], 24),
        ([192, 168, 0, 0], 16),
        ([198, 18, 0, 0], 15),
        ([198, 51, 100, 0], 24),
        ([203, 0, 113, 0], 24),
        ([224, 0, 0, 0], 4),
        ([240, 0, 0, 0], 4),
    ];
    NETS.iter().any(|(net, prefix)| in_v4(ip, *net, *prefix))
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

fn v6_special(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    // IPv4-mapped (::ffff:0:0/96) and NAT64 (64:ff9b::/96): the IPv4 decides.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_special(v4);
    }
    if in_v6(ip, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96) {
        return v4_special(Ipv4Addr::from((bits & 0xffff_ffff) as u32));
    }
    // 6to4 (2002::/16): the IPv4 is in bits 16..48.
    if in_v6(ip, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        return v4_special(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    // Only global unicast (2000::/3) may be reached, and not all of it.
    !in_v6(ip, Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3)
        || in_v6(ip, Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23)
        || in_v6(ip, Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn special(s: &str) -> bool {
        is_special_use(s.parse().unwrap())
    }

    #[test]
    fn special_use_addresses_rfc6890() {
        for s in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:c0a8:101::1",
            "2002:7f00:1::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2001:2::1",
        ] {
            assert!(special(s), "{s}");
        }
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!special(s), "{s}");
        }
        assert!(is_loopback("::ffff:127.0.0.2".parse().unwrap()));
        assert!(!is_loopback("10.0.0.1".parse().unwrap()));
    }
}
