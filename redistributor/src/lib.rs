//! segexpand-redistributor: moving a table from one layout to another while it stays
//! online (DESIGN.md, "Redistribution"). The state machine below is the contract the
//! mover and the flip will follow; its transition table is checked in debug builds.

/// Redistribution state of one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// In layout `layout`; every live tuple carries migration bit `bit`.
    Stable {
        /// Layout version.
        layout: u32,
        /// Migration bit value of every live tuple.
        bit: bool,
    },
    /// Moving from layout `from` (bit `old_bit`) to `to` (bit `!old_bit`).
    Redistributing {
        /// Old layout version.
        from: u32,
        /// New layout version.
        to: u32,
        /// Bit of tuples still in the old layout.
        old_bit: bool,
    },
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTransition {
    /// State before.
    pub from: State,
    /// State asked for.
    pub to: State,
}

impl std::fmt::Display for BadTransition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "illegal redistribution transition {:?} -> {:?}",
            self.from, self.to
        )
    }
}

impl std::error::Error for BadTransition {}

impl State {
    /// The transition table: start (Stable → Redistributing to the next layout with the
    /// bit's meaning flipped), flip (Redistributing → Stable in the new layout with the new
    /// bit) and cancel (Redistributing → Stable in the old layout with the old bit).
    pub fn check_transition(self, to: State) -> Result<(), BadTransition> {
        let ok = match (self, to) {
            (
                State::Stable { layout, bit },
                State::Redistributing {
                    from,
                    to: new,
                    old_bit,
                },
            ) => from == layout && new == layout.wrapping_add(1) && old_bit == bit,
            (
                State::Redistributing {
                    to: new, old_bit, ..
                },
                State::Stable { layout, bit },
            ) if layout == new => bit != old_bit,
            (State::Redistributing { from, old_bit, .. }, State::Stable { layout, bit }) => {
                layout == from && bit == old_bit
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(BadTransition { from: self, to })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::State::*;

    #[test]
    fn transition_table() {
        let s = Stable {
            layout: 3,
            bit: false,
        };
        let r = Redistributing {
            from: 3,
            to: 4,
            old_bit: false,
        };
        assert!(s.check_transition(r).is_ok());
        assert!(r
            .check_transition(Stable {
                layout: 4,
                bit: true
            })
            .is_ok()); // flip
        assert!(r
            .check_transition(Stable {
                layout: 3,
                bit: false
            })
            .is_ok()); // cancel
        assert!(r
            .check_transition(Stable {
                layout: 4,
                bit: false
            })
            .is_err()); // bit not flipped
        assert!(s
            .check_transition(Redistributing {
                from: 3,
                to: 5,
                old_bit: false
            })
            .is_err());
        assert!(s
            .check_transition(Redistributing {
                from: 3,
                to: 4,
                old_bit: true
            })
            .is_err());
        assert!(s
            .check_transition(Stable {
                layout: 4,
                bit: true
            })
            .is_err());
        assert!(r.check_transition(r).is_err());
    }
}
