//! rtnetlink implementation of [`RouteDriver`](super::RouteDriver) and [`LinkObserver`](super::LinkObserver).
