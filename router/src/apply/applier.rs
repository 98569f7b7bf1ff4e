//! Applying a whole plan as close to all-or-nothing as the kernel allows: the nft table is
//! swapped in one transaction (a refused script changes nothing), then routes and rules are
//! synced; if that fails, routes and table go back to the previously applied plan. Two
//! kernel round trips at most, because a failover waits for this.

use super::{ApplyError, FirewallDriver, RouteDriver};
use crate::plan::Plan;
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
        if !same_script {
            self.firewall.apply(&plan.nft).await?;
        }
        if let Err(e) = self.routes.sync(&plan.routes, &plan.rules).await {
            self.restore(!same_script).await;
            return Err(e);
        }
        self.applied = Some(plan.clone());
        Ok(Outcome {
            elapsed: start.elapsed(),
            firewall_replaced: !same_script,
        })
    }

    /// Put the previous plan back after a failed route sync.
    async fn restore(&mut self, firewall_too: bool) {
        let Some(prev) = &self.applied else {
            return;
        };
        if let Err(e) = self.routes.sync(&prev.routes, &prev.rules).await {
            tracing::error!("could not restore the previous routes: {e}");
        }
        if firewall_too {
            if let Err(e) = self.firewall.apply(&prev.nft).await {
                tracing::error!("could not restore the previous nft table: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{RouteSpec, RuleSpec};
    use std::sync::{Arc, Mutex};

    /// Records calls; fails where told to.
    #[derive(Clone, Default)]
    struct Fake {
        log: Arc<Mutex<Vec<String>>>,
        fail_sync_of: Option<usize>,
        fail_nft: bool,
    }

    impl RouteDriver for Fake {
        async fn sync(&mut self, routes: &[RouteSpec], _: &[RuleSpec]) -> Result<(), ApplyError> {
            self.log
                .lock()
                .unwrap()
                .push(format!("sync {}", routes.len()));
            if Some(routes.len()) == self.fail_sync_of {
                return Err(ApplyError::Netlink("refused".into()));
            }
            Ok(())
        }
        async fn current(&mut self) -> Result<(Vec<RouteSpec>, Vec<RuleSpec>), ApplyError> {
            Ok(Default::default())
        }
    }

    impl FirewallDriver for Fake {
        async fn apply(&mut self, s: &str) -> Result<(), ApplyError> {
            self.log.lock().unwrap().push(format!("nft {s}"));
            if self.fail_nft {
                return Err(ApplyError::Nft("syntax".into()));
            }
            Ok(())
        }
        async fn current(&mut self) -> Result<Option<String>, ApplyError> {
            Ok(Some(String::new()))
        }
    }

    fn plan(n_routes: usize, nft: &str) -> Plan {
        let route = RouteSpec {
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
}
