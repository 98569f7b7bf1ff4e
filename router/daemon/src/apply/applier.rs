//! Applying a whole plan as close to all-or-nothing as the kernel allows: the nft table is
//! swapped in one transaction (a refused script changes nothing), then routes and rules are
//! synced; if that fails, routes and table go back to the previously applied plan. Two
//! kernel round trips at most, because a failover waits for this.

use super::{ApplyError, Drift, FirewallDriver, RouteDriver};
use routeros_shared::plan::Plan;
use std::time::{Duration, Instant};

/// What one apply did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    pub elapsed: Duration,
    /// The nft table was replaced (it is left alone when the script did not change).
    pub firewall_replaced: bool,
}

pub struct Applier<R, F> {
    routes: R,
    firewall: F,
    applied: Option<Plan>,
}

impl<R: RouteDriver, F: FirewallDriver> Applier<R, F> {
    /// Nothing is assumed about the kernel: the first apply adopts whatever a previous run
    /// left (diffing routes, swapping the table) instead of tearing it down first.
    pub fn new(routes: R, firewall: F) -> Self {
        Self {
            routes,
            firewall,
            applied: None,
        }
    }

    /// The plan the kernel holds since the last successful apply.
    pub fn applied(&self) -> Option<&Plan> {
        self.applied.as_ref()
    }

    pub fn firewall(&mut self) -> &mut F {
        &mut self.firewall
    }

    pub fn routes(&mut self) -> &mut R {
        &mut self.routes
    }

    pub async fn apply(&mut self, plan: &Plan) -> Result<Outcome, ApplyError> {
        let start = Instant::now();
        // Our own record decides: listing the table first would cost a process per apply.
        let same_script = self.applied.as_ref().map(|p| &p.nft) == Some(&plan.nft);
        let turns_update = self.applied.as_ref().and_then(|a| plan.turns_update(a));
        if !same_script {
            self.firewall.apply(&plan.firewall_script()).await?;
        } else if let Some(update) = &turns_update {
            // Only the shares moved: the table (host-affinity sets, counters) stays.
            self.firewall.apply(update).await?;
        }
        if let Err(e) = self.routes.sync(&plan.routes, &plan.rules).await {
            self.restore(!same_script || turns_update.is_some()).await;
            return Err(e);
        }
        self.applied = Some(plan.clone());
        Ok(Outcome {
            elapsed: start.elapsed(),
            firewall_replaced: !same_script,
        })
    }

    /// Make the kernel hold the applied plan again where somebody else changed it: routes
    /// and rules always, the nft table's existence when `firewall_too` (that costs an `nft`
    /// process). Reads first and writes only what drifted, so the events our own writes
    /// cause find nothing to do and cannot start a loop. Returns what was found.
    pub async fn reconcile(&mut self, firewall_too: bool) -> Result<Drift, ApplyError> {
        let Some(plan) = &self.applied else {
            return Ok(Drift::default());
        };
        let drift = Drift {
            routes: self.routes.drift(&plan.routes, &plan.rules).await?,
            firewall_missing: firewall_too && self.firewall.current().await?.is_none(),
        };
        if drift.firewall_missing {
            self.firewall.apply(&plan.firewall_script()).await?;
        }
        if !drift.routes.is_empty() {
            self.routes.sync(&plan.routes, &plan.rules).await?;
        }
        Ok(drift)
    }

    /// Put the previous plan back after a failed route sync; `firewall_too` when this apply
    /// changed the nft table or its turn maps (the whole previous table is reloaded).
    async fn restore(&mut self, firewall_too: bool) {
        let Some(prev) = &self.applied else {
            return;
        };
        if let Err(e) = self.routes.sync(&prev.routes, &prev.rules).await {
            tracing::error!("could not restore the previous routes: {e}");
        }
        if firewall_too {
            if let Err(e) = self.firewall.apply(&prev.firewall_script()).await {
                tracing::error!("could not restore the previous nft table: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use routeros_shared::plan::{Family, RouteSpec, RuleSelector, RuleSpec};
    use std::sync::{Arc, Mutex};

    /// Records calls and keeps what was applied as its "kernel"; fails where told to.
    #[derive(Clone, Default)]
    struct Fake {
        log: Arc<Mutex<Vec<String>>>,
        kernel: Arc<Mutex<Kernel>>,
        fail_sync_of: Option<usize>,
        fail_nft: bool,
    }

    #[derive(Default)]
    struct Kernel {
        routes: Vec<RouteSpec>,
        rules: Vec<RuleSpec>,
        nft: Option<String>,
    }

    impl RouteDriver for Fake {
        async fn sync(
            &mut self,
            routes: &[RouteSpec],
            rules: &[RuleSpec],
        ) -> Result<(), ApplyError> {
            self.log
                .lock()
                .unwrap()
                .push(format!("sync {}", routes.len()));
            if Some(routes.len()) == self.fail_sync_of {
                return Err(ApplyError::Unrepresentable("refused".into()));
            }
            let mut k = self.kernel.lock().unwrap();
            (k.routes, k.rules) = (routes.to_vec(), rules.to_vec());
            Ok(())
        }
        async fn current(&mut self) -> Result<(Vec<RouteSpec>, Vec<RuleSpec>), ApplyError> {
            let k = self.kernel.lock().unwrap();
            Ok((k.routes.clone(), k.rules.clone()))
        }
    }

    impl FirewallDriver for Fake {
        async fn apply(&mut self, s: &str) -> Result<(), ApplyError> {
            self.log.lock().unwrap().push(format!("nft {s}"));
            if self.fail_nft {
                use std::os::unix::process::ExitStatusExt;
                return Err(ApplyError::Nft(crate::apply::NftError::Failed {
                    status: std::process::ExitStatus::from_raw(1 << 8),
                    stderr: "syntax".into(),
                }));
            }
            self.kernel.lock().unwrap().nft = Some(s.to_string());
            Ok(())
        }
        async fn current(&mut self) -> Result<Option<String>, ApplyError> {
            Ok(self.kernel.lock().unwrap().nft.clone())
        }
    }

    fn plan(n_routes: usize, nft: &str) -> Plan {
        let route = RouteSpec {
            family: Family::V4,
            table: 100,
            metric: 0,
            hops: vec![],
        };
        Plan {
            routes: vec![route; n_routes],
            nft: nft.into(),
            ..Plan::default()
        }
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn bad_script_changes_nothing() {
        let fake = Fake {
            fail_nft: true,
            ..Fake::default()
        };
        let log = fake.log.clone();
        let mut a = Applier::new(fake.clone(), fake);
        assert!(run(a.apply(&plan(1, "x"))).is_err());
        assert_eq!(*log.lock().unwrap(), ["nft x"], "no route touched");
        assert!(a.applied().is_none());
    }

    #[test]
    fn failed_route_sync_restores_the_previous_plan() {
        let fake = Fake {
            fail_sync_of: Some(3),
            ..Fake::default()
        };
        let log = fake.log.clone();
        let mut a = Applier::new(fake.clone(), fake);
        run(a.apply(&plan(1, "a"))).unwrap();
        assert!(run(a.apply(&plan(3, "b"))).is_err());
        assert_eq!(
            *log.lock().unwrap(),
            ["nft a", "sync 1", "nft b", "sync 3", "sync 1", "nft a"]
        );
        assert_eq!(a.applied(), Some(&plan(1, "a")));
    }

    #[test]
    fn unchanged_script_is_not_reloaded() {
        let fake = Fake::default();
        let log = fake.log.clone();
        let mut a = Applier::new(fake.clone(), fake);
        run(a.apply(&plan(1, "a"))).unwrap();
        let second = run(a.apply(&plan(2, "a"))).unwrap();
        assert!(!second.firewall_replaced);
        assert_eq!(*log.lock().unwrap(), ["nft a", "sync 1", "sync 2"]);
    }

    #[test]
    fn moved_shares_rewrite_only_the_turn_maps() {
        let fake = Fake::default();
        let log = fake.log.clone();
        let mut a = Applier::new(fake.clone(), fake);
        let with_turns = |elements: &str| Plan {
            turns: [("turns_choose_wan".to_string(), elements.to_string())].into(),
            ..plan(1, "T\n")
        };
        run(a.apply(&with_turns("0 : 0x100"))).unwrap();
        let moved = run(a.apply(&with_turns("0 : 0x200"))).unwrap();
        assert!(!moved.firewall_replaced, "the table stays");
        run(a.apply(&with_turns("0 : 0x200"))).unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            [
                "nft T\nadd element inet routeros turns_choose_wan { 0 : 0x100 }\n",
                "sync 1",
                "nft flush map inet routeros turns_choose_wan\nadd element inet routeros turns_choose_wan { 0 : 0x200 }\n",
                "sync 1",
                "sync 1",
            ]
        );
    }

    fn with_rule(mut p: Plan) -> Plan {
        p.rules = vec![RuleSpec {
            family: Family::V4,
            priority: 1300,
            selector: RuleSelector::Oif("wan1".into()),
            table: 100,
        }];
        p
    }

    #[test]
    fn reconcile_restores_only_what_was_removed() {
        let fake = Fake::default();
        let (log, kernel) = (fake.log.clone(), fake.kernel.clone());
        let mut a = Applier::new(fake.clone(), fake);
        assert!(
            run(a.reconcile(true)).unwrap().is_empty(),
            "nothing applied yet: nothing to hold"
        );
        let p = with_rule(plan(1, "a"));
        run(a.apply(&p)).unwrap();
        log.lock().unwrap().clear();

        // In sync (also right after our own apply): reads only, writes nothing.
        assert!(run(a.reconcile(true)).unwrap().is_empty());
        assert!(log.lock().unwrap().is_empty(), "{:?}", log.lock().unwrap());

        // Somebody deletes the rule and flushes the table: both come back, nft untouched.
        {
            let mut k = kernel.lock().unwrap();
            k.rules.clear();
            k.routes.clear();
        }
        let drift = run(a.reconcile(true)).unwrap();
        assert_eq!(drift.routes.missing_rules, p.rules);
        assert_eq!(drift.routes.missing_routes, p.routes);
        assert!(!drift.firewall_missing);
        assert_eq!(*log.lock().unwrap(), ["sync 1"]);
        assert_eq!(kernel.lock().unwrap().rules, p.rules);
        assert!(run(a.reconcile(true)).unwrap().is_empty(), "settled");

        // The nft table is deleted: reloaded only when asked to look at it.
        log.lock().unwrap().clear();
        kernel.lock().unwrap().nft = None;
        assert!(run(a.reconcile(false)).unwrap().is_empty());
        let drift = run(a.reconcile(true)).unwrap();
        assert!(drift.firewall_missing && drift.routes.is_empty(), "{drift}");
        assert_eq!(*log.lock().unwrap(), ["nft a"]);
        assert_eq!(kernel.lock().unwrap().nft.as_deref(), Some("a"));
    }
}
