//! An IPv4 address allocator over a CIDR range: a bitmap with a rotating
//! cursor, no duplicates, explicit requests honoured when free.

use std::net::Ipv4Addr;

/// Errors of the allocator.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IpAllocError {
    /// The CIDR does not parse or is too small.
    #[error("invalid CIDR {cidr:?}: {message}")]
    InvalidCidr {
        /// The text given.
        cidr: String,
        /// What is wrong.
        message: String,
    },
    /// The address is not an IPv4 address.
    #[error("{0:?} is not a valid IPv4 address")]
    InvalidAddress(String),
    /// The address lies outside the range.
    #[error("{ip} is not in the range {cidr}")]
    OutOfRange {
        /// The address.
        ip: Ipv4Addr,
        /// The range.
        cidr: String,
    },
    /// The address is taken already.
    #[error("{0} is already allocated")]
    AlreadyAllocated(Ipv4Addr),
    /// Every address of the range is taken.
    #[error("the range {0} is full")]
    Full(String),
}

/// Allocates addresses from an IPv4 CIDR; the network and broadcast
/// addresses are never handed out.
///
/// ```
/// use ketch_apiserver::ip_alloc::IpAllocator;
/// let mut a = IpAllocator::new("10.96.0.0/30").unwrap();
/// let first = a.allocate_next().unwrap();
/// let second = a.allocate_next().unwrap();
/// assert_ne!(first, second);
/// assert!(a.allocate_next().is_err()); // /30 has two usable addresses
/// a.release(first);
/// assert_eq!(a.allocate_next().unwrap(), first);
/// ```
#[derive(Clone, Debug)]
pub struct IpAllocator {
    cidr: String,
    base: u32,
    size: u32,
    used: Vec<u64>,
    count: u32,
    cursor: u32,
}

impl IpAllocator {
    /// An allocator over `cidr` (e.g. `10.96.0.0/12`), prefix length 8..=30.
    pub fn new(cidr: &str) -> Result<Self, IpAllocError> {
        let bad = |message: &str| IpAllocError::InvalidCidr {
            cidr: cidr.to_string(),
            message: message.to_string(),
        };
        let (addr, len) = cidr
            .split_once('/')
            .ok_or_else(|| bad("expected address/prefix-length"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad("not an IPv4 address"))?;
        let len: u32 = len.parse().map_err(|_| bad("bad prefix length"))?;
        if !(8..=30).contains(&len) {
            return Err(bad("prefix length must be between 8 and 30"));
        }
        let mask = u32::MAX << (32 - len);
        let base = u32::from(addr) & mask;
        let size = 1u32 << (32 - len);
        Ok(Self {
            cidr: format!("{}/{len}", Ipv4Addr::from(base)),
            base,
            size,
            used: vec![0; size.div_ceil(64) as usize],
            count: 0,
            cursor: 1,
        })
    }

    /// The range, normalised (`10.96.0.0/12`).
    pub fn cidr(&self) -> &str {
        &self.cidr
    }

    /// Number of allocated addresses.
    pub fn allocated(&self) -> u32 {
        self.count
    }

    fn usable(&self) -> u32 {
        self.size - 2
    }

    fn offset(&self, ip: Ipv4Addr) -> Result<u32, IpAllocError> {
        let v = u32::from(ip);
        if v <= self.base || v >= self.base + self.size - 1 {
            return Err(IpAllocError::OutOfRange {
                ip,
                cidr: self.cidr.clone(),
            });
        }
        Ok(v - self.base)
    }

    fn is_set(&self, off: u32) -> bool {
        self.used[(off / 64) as usize] & (1 << (off % 64)) != 0
    }

    fn set(&mut self, off: u32, on: bool) {
        let word = &mut self.used[(off / 64) as usize];
        if on {
            *word |= 1 << (off % 64);
        } else {
            *word &= !(1 << (off % 64));
        }
    }

    /// Allocates a specific address.
    pub fn allocate(&mut self, ip: Ipv4Addr) -> Result<(), IpAllocError> {
        let off = self.offset(ip)?;
        if self.is_set(off) {
            return Err(IpAllocError::AlreadyAllocated(ip));
        }
        self.set(off, true);
        self.count += 1;
        Ok(())
    }

    /// Parses and allocates a specific address.
    pub fn allocate_str(&mut self, ip: &str) -> Result<Ipv4Addr, IpAllocError> {
        let addr: Ipv4Addr = ip
            .parse()
            .map_err(|_| IpAllocError::InvalidAddress(ip.to_string()))?;
        self.allocate(addr)?;
        Ok(addr)
    }

    /// Allocates the next free address after the last one handed out.
    pub fn allocate_next(&mut self) -> Result<Ipv4Addr, IpAllocError> {
        if self.count >= self.usable() {
            return Err(IpAllocError::Full(self.cidr.clone()));
        }
        let usable = self.usable();
        for i in 0..usable {
            let off = 1 + (self.cursor - 1 + i) % usable;
            if !self.is_set(off) {
                self.set(off, true);
                self.count += 1;
                self.cursor = 1 + off % usable;
                return Ok(Ipv4Addr::from(self.base + off));
            }
        }
        Err(IpAllocError::Full(self.cidr.clone()))
    }

    /// Releases an address; releasing a free or foreign address does nothing.
    pub fn release(&mut self, ip: Ipv4Addr) {
        if let Ok(off) = self.offset(ip)
            && self.is_set(off)
        {
            self.set(off, false);
            self.count -= 1;
        }
    }

    /// True when the address is allocated.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.offset(ip).is_ok_and(|off| self.is_set(off))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_duplicates_until_full() {
        let mut a = IpAllocator::new("10.0.0.0/24").unwrap();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..254 {
            assert!(seen.insert(a.allocate_next().unwrap()));
        }
        assert_eq!(
            a.allocate_next(),
            Err(IpAllocError::Full("10.0.0.0/24".into()))
        );
        assert!(!seen.contains(&Ipv4Addr::new(10, 0, 0, 0)));
        assert!(!seen.contains(&Ipv4Addr::new(10, 0, 0, 255)));
    }

    #[test]
    fn explicit_requests() {
        let mut a = IpAllocator::new("10.96.0.0/16").unwrap();
        assert_eq!(
            a.allocate_str("10.96.0.10"),
            Ok(Ipv4Addr::new(10, 96, 0, 10))
        );
        assert_eq!(
            a.allocate_str("10.96.0.10"),
            Err(IpAllocError::AlreadyAllocated(Ipv4Addr::new(10, 96, 0, 10)))
        );
        assert!(matches!(
            a.allocate_str("10.97.0.1"),
            Err(IpAllocError::OutOfRange { .. })
        ));
        assert!(matches!(
            a.allocate_str("10.96.0.0"),
            Err(IpAllocError::OutOfRange { .. })
        ));
        assert!(matches!(
            a.allocate_str("nope"),
            Err(IpAllocError::InvalidAddress(_))
        ));
        a.release(Ipv4Addr::new(10, 96, 0, 10));
        assert!(!a.contains(Ipv4Addr::new(10, 96, 0, 10)));
        assert_eq!(a.allocated(), 0);
    }

    #[test]
    fn bad_cidrs() {
        for bad in [
            "10.0.0.0",
            "10.0.0.0/31",
            "10.0.0.0/4",
            "x/16",
            "10.0.0.0/x",
        ] {
            assert!(IpAllocator::new(bad).is_err(), "{bad}");
        }
        assert_eq!(
            IpAllocator::new("10.96.5.5/12").unwrap().cidr(),
            "10.96.0.0/12"
        );
    }
}
