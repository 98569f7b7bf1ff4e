//! Human-readable form of a plan, in `ip route` / `ip rule` syntax, for `--print-plan`,
//! logs and golden tests.

use super::model::*;
use std::fmt;

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(gw) = self.gateway {
            write!(f, "via {gw} ")?;
        }
        write!(f, "dev {}", self.dev)
    }
}

fn table_name(t: u32) -> String {
    if t == MAIN_TABLE {
        "main".into()
    } else {
        t.to_string()
    }
}

/// `ip -6`'s flag in front of IPv6 entries, nothing for IPv4.
fn family_flag(family: Family) -> &'static str {
    match family {
        Family::V4 => "",
        Family::V6 => "-6 ",
    }
}

impl fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(family_flag(self.family))?;
        write!(
            f,
            "default table {} proto {ROUTE_PROTO} metric {}",
            table_name(self.table),
            self.metric
        )?;
        match self.hops.as_slice() {
            [one] => write!(f, " {one}"),
            hops => hops
                .iter()
                .try_for_each(|h| write!(f, " nexthop {h} weight {}", h.weight)),
        }
    }
}

impl fmt::Display for RuleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}: ", family_flag(self.family), self.priority)?;
        match &self.selector {
            RuleSelector::SuppressMainDefault => {
                write!(f, "from all lookup main suppress_prefixlength 0")
            }
            RuleSelector::FwMark { mark, mask } => {
                write!(
                    f,
                    "from all fwmark {mark:#x}/{mask:#x} lookup {}",
                    table_name(self.table)
                )
            }
            RuleSelector::From(a) => write!(f, "from {a} lookup {}", table_name(self.table)),
            RuleSelector::Oif(dev) => {
                write!(f, "from all oif {dev} lookup {}", table_name(self.table))
            }
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# active: {}", self.active_wans.join(", "))?;
        writeln!(f, "# active IPv6: {}", self.active_wans6.join(", "))?;
        writeln!(f, "# ip route")?;
        for r in &self.routes {
            writeln!(f, "{r}")?;
        }
        writeln!(f, "# ip rule")?;
        for r in &self.rules {
            writeln!(f, "{r}")?;
        }
        writeln!(f, "# nft")?;
        f.write_str(&self.firewall_script())
    }
}
