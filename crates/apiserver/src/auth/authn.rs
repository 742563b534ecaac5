//! Authentication: [`Authenticator`] turns credentials into a [`UserInfo`];
//! [`TokenFileAuthenticator`] reads Kubernetes' static token file.

use std::collections::HashMap;
use std::path::Path;

use super::{GROUP_AUTHENTICATED, UserInfo};

/// Errors of reading a token file.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// The file could not be read.
    #[error("reading token file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// A line does not have the form `token,user,uid[,"group1,group2"]`.
    #[error("token file line {line}: {message}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Turns a bearer token into an identity.
///
/// ```
/// use ketch_apiserver::auth::{Authenticator, TokenFileAuthenticator};
/// let authn = TokenFileAuthenticator::parse("s3cret,alice,1001,\"dev,ops\"\n").unwrap();
/// let alice = authn.authenticate("s3cret").unwrap();
/// assert_eq!(alice.name, "alice");
/// assert!(alice.in_group("ops"));
/// assert!(authn.authenticate("wrong").is_none());
/// ```
pub trait Authenticator: Send + Sync + 'static {
    /// The identity the token proves, `None` when the token is unknown.
    fn authenticate(&self, bearer_token: &str) -> Option<UserInfo>;
}

/// Bearer tokens from a static token file in Kubernetes' CSV format: one
/// `token,user,uid,"group1,group2"` per line (groups optional; blank lines and
/// lines starting with `#` are skipped). Every user is also put in
/// `system:authenticated`.
#[derive(Clone, Debug, Default)]
pub struct TokenFileAuthenticator {
    tokens: HashMap<String, UserInfo>,
}

impl TokenFileAuthenticator {
    /// Reads a token file.
    ///
    /// ```no_run
    /// use ketch_apiserver::auth::TokenFileAuthenticator;
    /// let authn = TokenFileAuthenticator::from_file("/etc/ketch/tokens.csv")?;
    /// # Ok::<(), ketch_apiserver::auth::TokenFileError>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, TokenFileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses the contents of a token file.
    ///
    /// ```
    /// use ketch_apiserver::auth::TokenFileAuthenticator;
    /// assert!(TokenFileAuthenticator::parse("only-a-token\n").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self, TokenFileError> {
        let mut tokens = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let malformed = |message: &str| TokenFileError::Malformed {
                line: i + 1,
                message: message.to_string(),
            };
            let fields = split_csv(line).map_err(|m| malformed(&m))?;
            if fields.len() < 3 {
                return Err(malformed(
                    "expected at least 3 fields: token,user,uid[,\"groups\"]",
                ));
            }
            if fields.len() > 4 {
                return Err(malformed(
                    "expected at most 4 fields (quote the group list)",
                ));
            }
            let token = fields[0].clone();
            if token.is_empty() {
                return Err(malformed("the token is empty"));
            }
            if fields[1].is_empty() {
                return Err(malformed("the user name is empty"));
            }
            let mut groups: Vec<String> = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if !groups.iter().any(|g| g == GROUP_AUTHENTICATED) {
                groups.push(GROUP_AUTHENTICATED.to_string());
            }
            let user = UserInfo {
                name: fields[1].clone(),
                uid: fields[2].clone(),
                groups,
            };
            if tokens.insert(token, user).is_some() {
                return Err(malformed("duplicate token"));
            }
        }
        Ok(Self { tokens })
    }

    /// Adds one token (builder style).
    ///
    /// ```
    /// use ketch_apiserver::auth::{Authenticator, TokenFileAuthenticator, UserInfo};
    /// let authn = TokenFileAuthenticator::default().with_token("t", UserInfo::node("n1"));
    /// assert_eq!(authn.authenticate("t").unwrap().node_name(), Some("n1"));
    /// ```
    pub fn with_token(mut self, token: &str, user: UserInfo) -> Self {
        self.tokens.insert(token.to_string(), user);
        self
    }

    /// Number of known tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True when no token is known.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

impl Authenticator for TokenFileAuthenticator {
    fn authenticate(&self, bearer_token: &str) -> Option<UserInfo> {
        self.tokens.get(bearer_token).cloned()
    }
}

/// Splits one CSV line; fields may be double-quoted (`""` is a literal quote).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err(String::from("unterminated quoted field")),
                }
            }
            while chars.peek() == Some(&' ') {
                chars.next();
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => return Err(format!("unexpected {c:?} after a quoted field")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field.trim().to_string());
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err(String::from("quote inside an unquoted field")),
                    Some(c) => field.push(c),
                }
            }
            fields.push(field.trim().to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubernetes_token_file() {
        let authn = TokenFileAuthenticator::parse(
            "# comment\n\
             admin-token,admin,0,\"system:masters\"\n\
             node-token,system:node:n1,n1,\"system:nodes\"\n\
             plain,bob,7\n",
        )
        .unwrap();
        assert_eq!(authn.len(), 3);
        let admin = authn.authenticate("admin-token").unwrap();
        assert!(admin.is_privileged());
        assert!(admin.in_group(GROUP_AUTHENTICATED));
        let node = authn.authenticate("node-token").unwrap();
        assert_eq!(node.node_name(), Some("n1"));
        let bob = authn.authenticate("plain").unwrap();
        assert_eq!(bob.uid, "7");
        assert_eq!(bob.groups, vec![GROUP_AUTHENTICATED.to_string()]);
    }

    #[test]
    fn rejects_malformed_lines_with_line_numbers() {
        let cases = [
            ("tok,user\n", 1),
            ("\n\"unterminated,user,1\n", 2),
            ("a,b,c,d,e\n", 1),
            (",user,1\n", 1),
            ("t,u,1\nt,v,2\n", 2),
        ];
        for (text, line) in cases {
            match TokenFileAuthenticator::parse(text) {
                Err(TokenFileError::Malformed { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: expected malformed, got {other:?}"),
            }
        }
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let err = TokenFileAuthenticator::from_file("/nonexistent/ketch/tokens.csv").unwrap_err();
        assert!(matches!(err, TokenFileError::Io { .. }), "{err}");
    }
}
