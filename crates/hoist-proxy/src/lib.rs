//! hoist's load balancer: an HTTP/1.1 and HTTP/2 reverse proxy with weighted target
//! groups, health-checked targets, connection draining and Prometheus metrics.
//!
//! It is the data plane only: it must not start or stop containers or decide
//! deployments; the controller tells it which targets exist and their weights, and it
//! keeps serving with the last configuration it was given when the controller is gone.
