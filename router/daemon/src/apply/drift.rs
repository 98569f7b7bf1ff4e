//! What another program changed in our kernel state: routes and rules of ours that are
//! missing, or extra, compared with the applied plan, and a deleted nft table. systemd-networkd
//! (netplan) deletes foreign routes and rules when it starts or reloads, and an operator may
//! flush a table by hand; the daemon notices through this and re-applies.

use routeros_shared::plan::{RouteSpec, RuleSpec};
use std::fmt;

/// Our routes and rules: wanted but absent, present but not wanted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteDrift {
    pub missing_routes: Vec<RouteSpec>,
    pub extra_routes: Vec<RouteSpec>,
    pub missing_rules: Vec<RuleSpec>,
    pub extra_rules: Vec<RuleSpec>,
}

impl RouteDrift {
    /// Compare what is wanted with what the kernel holds (both in the driver's comparable
    /// form). Order does not matter.
    pub fn between(
        (want_routes, want_rules): (&[RouteSpec], &[RuleSpec]),
        (have_routes, have_rules): (&[RouteSpec], &[RuleSpec]),
    ) -> Self {
        fn minus<T: PartialEq + Clone>(a: &[T], b: &[T]) -> Vec<T> {
            a.iter().filter(|x| !b.contains(x)).cloned().collect()
        }
        Self {
            missing_routes: minus(want_routes, have_routes),
            extra_routes: minus(have_routes, want_routes),
            missing_rules: minus(want_rules, have_rules),
            extra_rules: minus(have_rules, want_rules),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.missing_routes.is_empty()
            && self.extra_routes.is_empty()
            && self.missing_rules.is_empty()
            && self.extra_rules.is_empty()
    }
}

/// Everything found out of place by one check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    pub routes: RouteDrift,
    /// Our nft table is gone.
    pub firewall_missing: bool,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty() && !self.firewall_missing
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.routes;
        let mut parts: Vec<String> = Vec::new();
        for (n, what) in [
            (r.missing_routes.len(), "route(s) missing"),
            (r.extra_routes.len(), "stale route(s)"),
            (r.missing_rules.len(), "rule(s) missing"),
            (r.extra_rules.len(), "stale rule(s)"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        if self.firewall_missing {
            parts.push("nft table missing".into());
        }
        if parts.is_empty() {
            f.write_str("in sync")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use routeros_shared::plan::{Family, NextHop, RuleSelector};

    fn route(table: u32) -> RouteSpec {
        RouteSpec {
            family: Family::V4,
            table,
            metric: 0,
            hops: vec![NextHop {
                dev: "wan1".into(),
                gateway: None,
                weight: 1,
            }],
        }
    }

    fn rule(priority: u32) -> RuleSpec {
        RuleSpec {
            family: Family::V4,
            priority,
            selector: RuleSelector::Oif("wan1".into()),
            table: 100,
        }
    }

    #[test]
    fn lists_missing_and_extra_whatever_the_order() {
        let want = (vec![route(100), route(200)], vec![rule(1300), rule(1301)]);
        let have = (vec![route(200), route(100)], vec![rule(1301), rule(1300)]);
        let same = RouteDrift::between((&want.0, &want.1), (&have.0, &have.1));
        assert!(same.is_empty(), "{same:?}");

        let have = (vec![route(200), route(300)], vec![rule(1301)]);
        let d = RouteDrift::between((&want.0, &want.1), (&have.0, &have.1));
        assert_eq!(d.missing_routes, [route(100)]);
        assert_eq!(d.extra_routes, [route(300)]);
        assert_eq!(d.missing_rules, [rule(1300)]);
        assert!(d.extra_rules.is_empty());
        let all = Drift {
            routes: d,
            firewall_missing: true,
        };
        assert_eq!(
            all.to_string(),
            "1 route(s) missing, 1 stale route(s), 1 rule(s) missing, nft table missing"
        );
        assert_eq!(Drift::default().to_string(), "in sync");
        assert!(Drift::default().is_empty());
    }
}
