//! One person across a city's key epochs: the union of its `pid_link` chains.
//!
//! After a key rotation a person's records carry a new pid. While the city keeps its
//! previous key (the overlap), ingest writes a link from the old pid to the new one; the
//! metrics read the links in their first pass and then count every pid by the
//! representative of its set (the smallest pid in it), so that a person with records under
//! both epochs counts once and their services add up. Without links the two pids are two
//! persons: linkage resets at the rotation.

use std::collections::BTreeMap;

use crate::core::model::values::Pid;

/// The sets of pids known to be one person, as a forest whose roots are the smallest
/// member of their set.
#[derive(Debug, Default)]
pub(crate) struct PidJoin {
    /// Each non-root pid's parent (after [`PidJoin::flatten`], its root).
    parent: BTreeMap<Pid, Pid>,
}

impl PidJoin {
    /// Notes that `a` and `b` are the same person.
    pub(crate) fn link(&mut self, a: Pid, b: Pid) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // The larger root hangs under the smaller: roots only ever get smaller
            // parents, so there are no cycles, and the order links arrive in does not
            // change the outcome.
            let (low, high) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent.insert(high, low);
        }
    }

    /// The representative of `pid`'s person.
    pub(crate) fn find(&self, pid: Pid) -> Pid {
        let mut at = pid;
        // Each step goes to a strictly smaller pid, so this ends.
        while let Some(&up) = self.parent.get(&at) {
            at = up;
        }
        at
    }

    /// Points every pid straight at its root, so that later finds take one step.
    pub(crate) fn flatten(&mut self) {
        let roots: Vec<(Pid, Pid)> = self.parent.keys().map(|&p| (p, self.find(p))).collect();
        self.parent.extend(roots);
    }

    /// True when no links were read (every pid is its own person).
    pub(crate) fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(n: u8) -> Pid {
        Pid([n; 16])
    }

    #[test]
    fn chains_join_into_one_person_in_any_order() {
        let mut join = PidJoin::default();
        // Epoch 1 → 2 → 3 for one person, arriving out of order; another person alone.
        join.link(pid(9), pid(5));
        join.link(pid(5), pid(7));
        join.link(pid(3), pid(8));
        join.link(pid(8), pid(9));
        join.flatten();
        for p in [3, 5, 7, 8, 9] {
            assert_eq!(join.find(pid(p)), pid(3), "pid {p}");
        }
        assert_eq!(join.find(pid(4)), pid(4));
        assert!(!join.is_empty());
    }
}
