//! What every AWS call of this crate shares: the SDK's configuration (credential
//! chain, region, HTTPS on rustls with ring) and a blocking bridge to its async API.

use std::future::Future;
use std::io;

/// The SDK configuration for `region` (or the chain's region when `None`): the
/// standard credential chain and endpoint rules (`AWS_ENDPOINT_URL[_<SERVICE>]`),
/// HTTPS through the SDK's hyper client on rustls with ring.
pub(crate) async fn config(region: Option<String>) -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region));
    }
    loader.load().await
}

/// Runs `work` to completion on a current-thread tokio runtime of its own thread, so
/// that callers stay blocking and may themselves run inside another runtime.
pub(crate) fn block_on<F, T>(work: F) -> io::Result<T>
where
    F: Future<Output = T> + Send,
    T: Send,
{
    with_runtime(|rt| rt.block_on(work))
}

/// Runs `work` on a thread of its own with a current-thread tokio runtime to block
/// on (for callers that interleave blocking steps, such as sleeps, with calls).
pub(crate) fn with_runtime<T: Send>(
    work: impl FnOnce(&tokio::runtime::Runtime) -> T + Send,
) -> io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            Ok(work(&rt))
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the AWS SDK's thread panicked")))
    })
}
