//! The S3 store: one object per key in one bucket of AWS S3 or any S3-compatible server (MinIO,
//! Ceph, moto…). The only module that names aws-sdk types; everything leaves as [`StoreError`].
//!
//! Create-if-absent across processes is the server's job: `PutObject` and
//! `CompleteMultipartUpload` carry `If-None-Match: *`, so of N API processes racing to store one
//! photo exactly one wins, and a 412 means "already there" (atomic on AWS S3 and MinIO). Within
//! one process, writes of one key also take turns ([`KeyLocks`]): a retry storm of one upload
//! then sends its bytes once, and servers whose conditional check is not atomic (moto checks,
//! then writes, without a lock) still report `Created` once per process. Files above
//! [`PART_SIZE`] go up in parts read straight from disk, so memory stays flat whatever the size.

use super::{
    BlobEntry, BlobKey, BlobStore, BlobStream, KeyLocks, PutOutcome, StoreError, validate_prefix,
};
use crate::config::Settings;
use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration,
};
use futures_util::{StreamExt, TryStreamExt};
use secrecy::{ExposeSecret, SecretString};
use std::path::Path;
use std::time::Duration;
use time::OffsetDateTime;

/// Size of one multipart part; files larger than one part are uploaded in parts.
pub const PART_SIZE: u64 = 8 * 1024 * 1024;

/// Parts in flight at once for one file: enough to fill a link, bounded so that many
/// concurrent uploads do not open hundreds of connections.
const PARTS_IN_FLIGHT: usize = 4;

/// `/readyz` must answer quickly even when S3 hangs; the SDK's own retries fit inside this.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// A conditional write racing another on AWS may get 409 `ConditionalRequestConflict`; retry a
/// few times, after which the other writer has finished and we see 412.
const CONFLICT_RETRIES: u32 = 5;

/// Everything needed to reach the bucket; read from [`Settings`].
#[derive(Debug, Clone)]
pub struct S3Config {
    /// `None`: AWS's own endpoint for the region.
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    pub path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub create_bucket: bool,
    pub connect_timeout: Duration,
    /// Longest wait for response bytes; a stalled server fails as `Unavailable`.
    pub read_timeout: Duration,
    /// Upper bound for one attempt of one request (one part upload, one GET).
    pub attempt_timeout: Duration,
}

impl S3Config {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<S3Config> {
        let access_key_id = settings
            .s3_access_key_id
            .clone()
            .filter(|id| !id.is_empty())
            .context("FIELDPROOF_S3_ACCESS_KEY_ID must be set when FIELDPROOF_BLOB_STORE=s3")?;
        let secret_access_key = settings
            .s3_secret_access_key
            .clone()
            .filter(|s| !s.expose_secret().is_empty())
            .context("FIELDPROOF_S3_SECRET_ACCESS_KEY must be set when FIELDPROOF_BLOB_STORE=s3")?;
        anyhow::ensure!(
            !settings.s3_bucket.is_empty(),
            "FIELDPROOF_S3_BUCKET must not be empty"
        );
        Ok(S3Config {
            endpoint: settings.s3_endpoint.clone().filter(|e| !e.is_empty()),
            region: settings.s3_region.clone(),
            bucket: settings.s3_bucket.clone(),
            path_style: settings.s3_path_style,
            access_key_id,
            secret_access_key,
            create_bucket: settings.s3_create_bucket,
            connect_timeout: Duration::from_millis(settings.s3_connect_timeout_ms),
            read_timeout: Duration::from_secs(settings.s3_read_timeout_secs),
            attempt_timeout: Duration::from_secs(settings.s3_attempt_timeout_secs),
        })
    }
}

pub struct S3Store {
    client: Client,
    bucket: String,
    region: String,
    create_bucket: bool,
    writing: KeyLocks,
}

impl S3Store {
    /// Build the client; no request is made until the first call.
    pub fn new(config: &S3Config) -> anyhow::Result<S3Store> {
        let credentials = Credentials::new(
            &config.access_key_id,
            config.secret_access_key.expose_secret(),
            None,
            None,
            "fieldproof-settings",
        );
        // ring rather than aws-lc: already in the tree for rustls, and needs no cmake build.
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .operation_attempt_timeout(config.attempt_timeout)
            .build();
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http_client)
            .region(Region::new(config.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(config.path_style)
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            // Checksums only where S3 requires them: S3-compatible servers differ in their
            // support for the newer default (aws-chunked trailers), and TLS covers transport.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Ok(S3Store {
            client: Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
            region: config.region.clone(),
            create_bucket: config.create_bucket,
            writing: KeyLocks::default(),
        })
    }

    async fn put_once(
        &self,
        key: &BlobKey,
        body: Body<'_>,
        content_type: &str,
    ) -> Result<PutOutcome, StoreError> {
        let context = || format!("storing {key}");
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key.as_str())
                .content_type(content_type)
                .if_none_match("*")
                .body(body.stream().await?)
                .send()
                .await;
            match result {
                Ok(_) => return Ok(PutOutcome::Created),
                Err(e) => match status(&e) {
                    Some(412) => return Ok(PutOutcome::AlreadyExisted),
                    Some(409) if attempt < CONFLICT_RETRIES => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                    }
                    _ => return Err(classify(e, context())),
                },
            }
        }
    }

    async fn put_multipart(
        &self,
        key: &BlobKey,
        path: &Path,
        size: u64,
        content_type: &str,
    ) -> Result<PutOutcome, StoreError> {
        // Several minutes of part uploads are wasted if the photo is already there.
        if self.exists(key).await? {
            return Ok(PutOutcome::AlreadyExisted);
        }
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| classify(e, format!("starting multipart upload of {key}")))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| {
                StoreError::other(
                    format!("starting multipart upload of {key}"),
                    "the server returned no upload id",
                )
            })?
            .to_owned();
        let outcome = self.upload_parts(key, path, size, &upload_id).await;
        if !matches!(outcome, Ok(PutOutcome::Created)) {
            // Parts of an abandoned upload are billed until aborted.
            let abort = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key.as_str())
                .upload_id(&upload_id)
                .send()
                .await;
            if let Err(e) = abort {
                tracing::warn!(key = %key, error = %aws_sdk_s3::error::DisplayErrorContext(&e),
                    "could not abort multipart upload; a bucket lifecycle rule should expire it");
            }
        }
        outcome
    }

    async fn upload_parts(
        &self,
        key: &BlobKey,
        path: &Path,
        size: u64,
        upload_id: &str,
    ) -> Result<PutOutcome, StoreError> {
        let part_count = size.div_ceil(PART_SIZE);
        let parts: Vec<CompletedPart> = futures_util::stream::iter(0..part_count)
            .map(|index| self.upload_part(key, path, size, upload_id, index))
            .buffered(PARTS_IN_FLIGHT)
            .try_collect()
            .await?;
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .upload_id(upload_id)
            .if_none_match("*")
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        match completed {
            Ok(_) => Ok(PutOutcome::Created),
            // Another process completed the same key first. A server that ignores the header
            // on Complete would overwrite, but with identical bytes: the key is their hash.
            Err(e) if matches!(status(&e), Some(412 | 409)) => Ok(PutOutcome::AlreadyExisted),
            Err(e) => Err(classify(e, format!("completing multipart upload of {key}"))),
        }
    }

    async fn upload_part(
        &self,
        key: &BlobKey,
        path: &Path,
        size: u64,
        upload_id: &str,
        index: u64,
    ) -> Result<CompletedPart, StoreError> {
        let offset = index * PART_SIZE;
        let length = PART_SIZE.min(size - offset);
        let body = file_body(path, offset, length).await?;
        // S3 part numbers start at 1 and go up to 10,000 (80 GB at 8 MiB: far above any cap).
        let part_number = i32::try_from(index + 1)
            .map_err(|e| StoreError::other(format!("part number of {key}"), e))?;
        let uploaded = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key.as_str())
            .upload_id(upload_id)
            .part_number(part_number)
            .body(body)
            .send()
            .await
            .map_err(|e| classify(e, format!("uploading part {part_number} of {key}")))?;
        Ok(CompletedPart::builder()
            .part_number(part_number)
            .set_e_tag(uploaded.e_tag().map(str::to_owned))
            .build())
    }

    /// `Ok(false)`: the bucket does not exist.
    async fn head_bucket(&self) -> Result<bool, StoreError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(true),
            Err(e) if status(&e) == Some(404) => Ok(false),
            Err(e) => Err(classify(e, format!("checking bucket {}", self.bucket))),
        }
    }

    async fn create_bucket_if_absent(&self) -> Result<(), StoreError> {
        let mut request = self.client.create_bucket().bucket(&self.bucket);
        // us-east-1 is the one region that refuses an explicit location constraint.
        if self.region != "us-east-1" {
            request = request.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                    .build(),
            );
        }
        match request.send().await {
            Ok(_) => {
                tracing::info!(bucket = %self.bucket, "created S3 bucket");
                Ok(())
            }
            // Another instance created it a moment ago: the HEAD below settles it.
            Err(e) if matches!(e.code(), Some("BucketAlreadyOwnedByYou")) => Ok(()),
            Err(e) => Err(classify(e, format!("creating bucket {}", self.bucket))),
        }
    }

    async fn check_inner(&self) -> Result<(), StoreError> {
        let mut exists = self.head_bucket().await?;
        if !exists && self.create_bucket {
            self.create_bucket_if_absent().await?;
            exists = self.head_bucket().await?;
        }
        if exists {
            Ok(())
        } else {
            Err(StoreError::other(
                format!("bucket {} does not exist", self.bucket),
                "set FIELDPROOF_S3_CREATE_BUCKET=true or create it",
            ))
        }
    }
}

/// What a single-request upload sends; a request body is consumed, so a retry makes a new one.
enum Body<'a> {
    File { path: &'a Path, size: u64 },
    Bytes(bytes::Bytes),
}

impl Body<'_> {
    async fn stream(&self) -> Result<ByteStream, StoreError> {
        match self {
            Body::File { path, size } => file_body(path, 0, *size).await,
            Body::Bytes(bytes) => Ok(ByteStream::from(bytes.clone())),
        }
    }
}

/// How much of a file a request body reads at a time. Each read is a trip through the
/// runtime's blocking threads; the SDK's default (64 KiB) made 64 of them for a 4 MB photo.
const BODY_READ: usize = 1024 * 1024;

/// A part of a file as a request body, read from disk while it is sent.
async fn file_body(path: &Path, offset: u64, length: u64) -> Result<ByteStream, StoreError> {
    ByteStream::read_from()
        .path(path)
        .offset(offset)
        .length(Length::Exact(length))
        .buffer_size(BODY_READ)
        .build()
        .await
        .map_err(|e| StoreError::other(format!("reading {}", path.display()), e))
}

fn status<E>(error: &SdkError<E>) -> Option<u16> {
    error.raw_response().map(|r| r.status().as_u16())
}

/// Map an SDK failure onto worth-retrying-later (network, timeouts, throttling, 5xx) or anything
/// else. A 404 is left to the callers that expect one (a missing bucket is no missing blob).
fn classify<E>(error: SdkError<E>, context: String) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    let status = status(&error);
    match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::unavailable(context, error)
        }
        _ if matches!(status, Some(429 | 500..=599)) => StoreError::unavailable(context, error),
        _ => StoreError::other(context, error),
    }
}

#[async_trait]
impl BlobStore for S3Store {
    async fn put_file(
        &self,
        key: &BlobKey,
        path: &Path,
        content_type: &str,
    ) -> Result<PutOutcome, StoreError> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| StoreError::other(format!("reading {}", path.display()), e))?
            .len();
        let _turn = self.writing.lock(key).await;
        if size > PART_SIZE {
            return self.put_multipart(key, path, size, content_type).await;
        }
        self.put_once(key, Body::File { path, size }, content_type)
            .await
    }

    async fn put_bytes(
        &self,
        key: &BlobKey,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<PutOutcome, StoreError> {
        let _turn = self.writing.lock(key).await;
        self.put_once(key, Body::Bytes(bytes.into()), content_type)
            .await
    }

    async fn get(&self, key: &BlobKey) -> Result<Vec<u8>, StoreError> {
        let stream = self.get_stream(key).await?;
        let chunks: Vec<bytes::Bytes> = stream.try_collect().await?;
        Ok(chunks.concat())
    }

    async fn get_stream(&self, key: &BlobKey) -> Result<BlobStream, StoreError> {
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| {
                if e.code() == Some("NoSuchKey") {
                    StoreError::NotFound {
                        key: key.to_string(),
                    }
                } else {
                    classify(e, format!("reading {key}"))
                }
            })?;
        let context = format!("reading {key}");
        let stream = futures_util::stream::try_unfold(output.body, move |mut body| {
            let context = context.clone();
            async move {
                match body.try_next().await {
                    Ok(Some(chunk)) => Ok(Some((chunk, body))),
                    Ok(None) => Ok(None),
                    // The connection broke mid-body: a retry may well succeed.
                    Err(e) => Err(StoreError::unavailable(context, e)),
                }
            }
        });
        Ok(Box::pin(stream))
    }

    async fn exists(&self, key: &BlobKey) -> Result<bool, StoreError> {
        let result = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if status(&e) == Some(404) => Ok(false),
            Err(e) => Err(classify(e, format!("looking up {key}"))),
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), StoreError> {
        // S3 answers 204 for a missing key too, which makes this idempotent for free.
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(e, format!("deleting {key}")))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>, StoreError> {
        validate_prefix(prefix)?;
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .set_prefix((!prefix.is_empty()).then(|| prefix.to_owned()))
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(e, format!("listing {prefix:?}")))?;
            for object in page.contents() {
                // Objects someone else put in the bucket are not ours to list or sweep.
                let Some(key) = object.key().and_then(|k| BlobKey::parse(k).ok()) else {
                    continue;
                };
                let last_modified = object
                    .last_modified()
                    .and_then(|t| OffsetDateTime::from_unix_timestamp_nanos(t.as_nanos()).ok())
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH);
                found.push(BlobEntry {
                    key,
                    size: object
                        .size()
                        .and_then(|s| u64::try_from(s).ok())
                        .unwrap_or(0),
                    last_modified,
                });
            }
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    async fn presigned_get(
        &self,
        key: &BlobKey,
        ttl: Duration,
    ) -> Result<Option<String>, StoreError> {
        let presigning = PresigningConfig::expires_in(ttl)
            .map_err(|e| StoreError::other(format!("presigning {key} for {ttl:?}"), e))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .presigned(presigning)
            .await
            .map_err(|e| classify(e, format!("presigning {key}")))?;
        Ok(Some(request.uri().to_owned()))
    }

    async fn check(&self) -> Result<(), StoreError> {
        match tokio::time::timeout(CHECK_TIMEOUT, self.check_inner()).await {
            Ok(result) => result,
            Err(elapsed) => Err(StoreError::unavailable(
                format!("S3 did not answer within {CHECK_TIMEOUT:?}"),
                elapsed,
            )),
        }
    }

    fn kind(&self) -> &'static str {
        "s3"
    }
}
