//! WAN lines the daemon brings up itself (today: PPPoE sessions run by pppd).

pub mod pppd;
