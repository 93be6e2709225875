//! The Prometheus remote_write 1.0 messages (`prometheus/prompb/types.proto`
//! and `remote.proto`), the fields a sender needs, written out for prost so
//! no `protoc` is needed at build time. Field numbers are the protocol's.

/// `prometheus.WriteRequest`. Repeated fields concatenate on the wire, so the
/// encodings of several requests, put end to end, decode as one request with
/// all their series: the queue relies on this to send several queued batches
/// in one request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`: one label set (sorted by name, `__name__`
/// included) and its samples, oldest first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`: a value at a time in Unix milliseconds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}
