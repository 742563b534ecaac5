//! The closed set of outcomes a plugin reports, [`Code`], and [`Status`].

use std::borrow::Cow;
use std::fmt;

use smallvec::SmallVec;

/// What a plugin's answer means for the pod. The set is closed: the queue and
/// the scheduling cycle act on each code in one documented way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Code {
    /// The plugin is satisfied; go on.
    #[default]
    Success,
    /// An internal failure; the pod is retried with backoff.
    Error,
    /// The pod does not fit now; preemption may help, and the pod waits for a
    /// cluster event the rejecting plugin registered.
    Unschedulable,
    /// The pod does not fit and preemption cannot help on this node.
    UnschedulableAndUnresolvable,
    /// Permit only: hold the pod until it is allowed, rejected or times out.
    Wait,
    /// The plugin has nothing to do for this pod; later calls of the same
    /// plugin in this cycle are skipped (PreFilter/PreScore), or the next
    /// binder is tried (Bind).
    Skip,
    /// The pod waits for something outside the scheduler (e.g. a nominated
    /// pod's victims to go away).
    Pending,
}

/// A plugin's answer: a [`Code`], the reasons, and which plugin said it.
///
/// Reasons are `Cow<'static, str>` and at most one is kept inline, so the
/// common static rejections (`"Insufficient cpu"`) do not allocate.
///
/// ```
/// use ketch_scheduler::framework::{Code, Status};
/// let s = Status::unschedulable("node(s) were unschedulable");
/// assert_eq!(s.code(), Code::Unschedulable);
/// assert!(!s.is_success());
/// assert!(Status::success().is_success());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    code: Code,
    reasons: SmallVec<[Cow<'static, str>; 1]>,
    plugin: &'static str,
}

impl Status {
    /// Success with no reason.
    pub const fn success() -> Self {
        Self {
            code: Code::Success,
            reasons: SmallVec::new_const(),
            plugin: "",
        }
    }

    /// A status with a code and one reason.
    pub fn new(code: Code, reason: impl Into<Cow<'static, str>>) -> Self {
        let mut reasons = SmallVec::new();
        reasons.push(reason.into());
        Self {
            code,
            reasons,
            plugin: "",
        }
    }

    /// `Unschedulable` with a reason.
    pub fn unschedulable(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Code::Unschedulable, reason)
    }

    /// `UnschedulableAndUnresolvable` with a reason.
    pub fn unresolvable(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Code::UnschedulableAndUnresolvable, reason)
    }

    /// `Error` with a reason.
    pub fn error(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Code::Error, reason)
    }

    /// `Skip` with no reason.
    pub const fn skip() -> Self {
        Self {
            code: Code::Skip,
            reasons: SmallVec::new_const(),
            plugin: "",
        }
    }

    /// `Wait` with no reason (Permit).
    pub const fn wait() -> Self {
        Self {
            code: Code::Wait,
            reasons: SmallVec::new_const(),
            plugin: "",
        }
    }

    /// Adds one more reason (builder style).
    pub fn with_reason(mut self, reason: impl Into<Cow<'static, str>>) -> Self {
        self.reasons.push(reason.into());
        self
    }

    /// Records the plugin that produced the status.
    pub fn with_plugin(mut self, plugin: &'static str) -> Self {
        self.plugin = plugin;
        self
    }

    /// The code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The reasons, in order.
    pub fn reasons(&self) -> &[Cow<'static, str>] {
        &self.reasons
    }

    /// The plugin that produced the status (`""` if not recorded).
    pub fn plugin(&self) -> &'static str {
        self.plugin
    }

    /// True for `Success`.
    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    /// True for `Skip`.
    pub fn is_skip(&self) -> bool {
        self.code == Code::Skip
    }

    /// True for `Unschedulable` and `UnschedulableAndUnresolvable`.
    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.code)?;
        if !self.plugin.is_empty() {
            write!(f, " ({})", self.plugin)?;
        }
        for (i, r) in self.reasons.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { ", " })?;
            f.write_str(r)?;
        }
        Ok(())
    }
}
