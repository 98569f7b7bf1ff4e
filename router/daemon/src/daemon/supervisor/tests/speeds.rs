//! Line speeds learned from the byte counters, spare-capacity placement and the learned
//! speeds kept across a restart, with the fake kernel's counters moved by the tests.

use super::*;

/// wan1 100 Mbit/s (weight 2), wan2 50 Mbit/s (weight 1), placed by spare capacity.
fn spare_capacity() -> String {
    TWO_WANS
        .replace(
            "gateway = \"10.0.1.1\"",
            "gateway = \"10.0.1.1\"\nweight = 2\ndownload_mbit = 100",
        )
        .replace(
            "gateway = \"10.0.2.1\"",
            "gateway = \"10.0.2.1\"\ndownload_mbit = 50",
        )
        + "[routing]\nplacement = \"spare_capacity\"\n"
}

impl Lab {
    /// One second passes with each WAN receiving `mbit[i]` Mbit/s (and sending a tenth).
    fn traffic_second(&mut self, mbit: [u64; 2]) {
        self.counters_second(mbit, mbit);
    }

    /// One second passes with each WAN sending `tx[i]` tenths of a Mbit/s and receiving
    /// `rx_mbit[i]` Mbit/s.
    fn counters_second(&mut self, tx: [u64; 2], rx_mbit: [u64; 2]) {
        self.world.with(|w| {
            for ((wan, rx), tx) in ["wan1", "wan2"].into_iter().zip(rx_mbit).zip(tx) {
                let c = w.bytes.entry(wan.to_string()).or_default();
                c.0 += rx * 125_000;
                c.1 += tx * 12_500;
            }
        });
        let now = self.clock.load(Ordering::SeqCst);
        self.advance_to(now + 1000);
        self.second();
    }

    fn nft_count(&self) -> usize {
        self.world.with(|w| w.nft.len())
    }

    /// The `choose_wan` turn map's elements the kernel was last given: by a whole table load
    /// or by an in-place rewrite of the map (which leaves the table, and the choice rule
    /// `numgen inc mod 64 map @turns_choose_wan`, alone).
    fn choice(&self) -> String {
        const ADD: &str = "add element inet routeros turns_choose_wan { ";
        self.world.with(|w| {
            let script = w.nft.iter().rev().find(|s| s.contains(ADD)).unwrap();
            let elements = script.split(ADD).nth(1).unwrap();
            elements[..elements.find(" }").unwrap()].to_string()
        })
    }

    /// The `choose_wan` numgen rule of the last nft script applied (static placement: the
    /// ranges inline).
    fn choice_rule(&self) -> String {
        self.world.with(|w| {
            let script = w.nft.last().unwrap();
            let chain = script.split("chain choose_wan {").nth(1).unwrap();
            chain
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("ct mark set numgen"))
                .unwrap_or_default()
                .to_string()
        })
    }

    /// Whole table loads so far (in-place rewrites of a turn map not counted).
    fn table_loads(&self) -> usize {
        self.world
            .with(|w| w.nft.iter().filter(|s| s.contains("add table")).count())
    }

    /// wan2's share of new connections, from the status.
    fn wan2_share(&mut self) -> f64 {
        let status = self.request(Request::Status);
        let share = |i: usize| status["wans"][i]["share"].as_f64().unwrap();
        share(1) / (share(0) + share(1))
    }
}

#[test]
fn a_saturated_line_gets_fewer_new_connections_and_gets_them_back_when_it_frees_up() {
    let mut lab = Lab::start(&spare_capacity());
    let weights = lab.choice();
    assert!(
        weights.starts_with("0 : 0x100, 1 : 0x200, 2-3 : 0x100, 4 : 0x200"),
        "{weights}"
    );
    let loads = lab.table_loads();
    // One download fills wan1.
    for _ in 0..3 {
        lab.traffic_second([98, 0]);
    }
    let share = lab.wan2_share();
    assert!(share >= 0.8, "wan2 gets {share} of new connections");
    assert!(
        lab.choice().starts_with("0-"),
        "wan2 takes most turns: {}",
        lab.choice()
    );
    // Steady load, rates wobbling by a few Mbit/s: the table is left alone.
    let scripts = lab.nft_count();
    for rate in [95, 99, 97, 96, 98, 99] {
        lab.traffic_second([rate, 1]);
    }
    assert_eq!(lab.nft_count(), scripts, "replaced for rate noise");
    // The download ends: back to the weights.
    for _ in 0..2 {
        lab.traffic_second([0, 0]);
    }
    assert_eq!(lab.choice(), weights);
    // All of it by rewriting the turn map: the table (sticky hosts, counters) stayed.
    assert_eq!(lab.table_loads(), loads);
    // Routes never followed the rates: the main multipath route keeps weight 2:1.
    let main: Vec<u8> = lab.world.with(|w| {
        let main = w.routes.iter().find(|r| r.table == 254).unwrap();
        main.hops.iter().map(|h| h.weight).collect()
    });
    assert_eq!(main, [2, 1]);
}

#[test]
fn status_names_each_speed_and_its_source() {
    let mut lab = Lab::start(&spare_capacity());
    let status = lab.request(Request::Status);
    let wan1 = &status["wans"][0];
    assert_eq!(wan1["speed_down"]["kbit"], 100_000);
    assert_eq!(wan1["speed_down"]["source"], "declared");
    assert_eq!(wan1["speed_up"]["source"], "default");
    for _ in 0..4 {
        lab.traffic_second([40, 0]);
    }
    let status = lab.request(Request::Status);
    assert_eq!(status["wans"][0]["speed_up"]["kbit"], 4_000);
    assert_eq!(status["wans"][0]["speed_up"]["source"], "learned");
}

#[test]
fn auto_weights_follow_learned_speeds_and_keep_them_across_a_restart() {
    let auto = format!("{TWO_WANS}[routing]\nweights = \"auto\"\n");
    let mut lab = Lab::start(&auto);
    // Nothing learned yet: both at the default speed, equal weights.
    assert_eq!(
        lab.choice_rule(),
        "ct mark set numgen random mod 510 map { 0-254 : 0x100, 255-509 : 0x200 }"
    );
    for _ in 0..4 {
        lab.traffic_second([80, 20]);
    }
    assert_eq!(
        lab.choice_rule(),
        "ct mark set numgen random mod 319 map { 0-254 : 0x100, 255-318 : 0x200 }"
    );
    // Idle for a minute: the speeds stay, and are written to the state directory.
    for _ in 0..60 {
        lab.traffic_second([0, 0]);
    }
    let saved = std::fs::read_to_string(lab.dir.path().join("state/line-speeds.json")).unwrap();
    assert!(saved.contains("\"down_kbit\": 80000"), "{saved}");

    // A restarted daemon starts from them, before it has seen a byte.
    let mut again = Lab::supervisor(lab.dir.path(), &lab.world, &lab.clock, &lab.rt);
    lab.world.with(|w| w.nft.clear());
    lab.rt.block_on(again.start());
    assert_eq!(
        lab.choice_rule(),
        "ct mark set numgen random mod 319 map { 0-254 : 0x100, 255-318 : 0x200 }"
    );
}

#[test]
fn a_full_declared_upload_counts_and_an_undeclared_one_does_not() {
    let declared = spare_capacity().replace(
        "download_mbit = 100",
        "download_mbit = 100\nupload_mbit = 10",
    );
    let mut lab = Lab::start(&declared);
    // wan1 sends 10 Mbit/s (its whole declared upload) and receives nothing.
    for _ in 0..3 {
        lab.counters_second([100, 0], [0, 0]);
    }
    let share = lab.wan2_share();
    assert!(share >= 0.8, "wan2 gets {share}");

    // The same without a declared upload: placement by weight (2:1).
    let mut lab = Lab::start(&spare_capacity());
    for _ in 0..3 {
        lab.counters_second([100, 0], [0, 0]);
    }
    let share = lab.wan2_share();
    assert!((share - 1.0 / 3.0).abs() < 0.01, "wan2 gets {share}");
}
