//! The SDK's front door: one [`FieldDevice`] per app install, holding the queue, the device
//! key and the clocks. Every method takes and returns plain types (strings, numbers, records),
//! so the API can be exported through UniFFI as it is.

use crate::api::{ApiClient, CallError};
use crate::clock::{Clocks, SystemClocks};
use crate::deals::{CachedDeal, CachedSite, Visit};
use crate::error::SdkError;
use crate::keystore::{DeviceKey, KeyStore};
use crate::precheck::{PrecheckReport, precheck};
use crate::queue::{NewCapture, Queue, QueueItem};
use crate::session::{self, Session};
use crate::sync::{SyncOptions, SyncProgress, SyncReport, Syncer};
use fieldproof_domain::capture::{CaptureManifest, DeviceFix};
use fieldproof_domain::evidence::{ContentHash, NodePolicy};
use fieldproof_domain::pipeline::{PipelineTemplate, Requirement};

use std::collections::BTreeMap;
use std::path::Path;

/// A location fix from the OS at the shutter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FixInput {
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: Option<f64>,
    pub is_mock: bool,
}

/// What to capture.
#[derive(Debug, Clone)]
pub struct CaptureRequest {
    pub photo_path: String,
    pub deal_id: String,
    pub node_key: String,
    pub tags: Vec<String>,
    pub fix: Option<FixInput>,
    /// Run the perceptual hash (near-duplicates); a reduced decode, tens of ms on a phone.
    pub analyze_pixels: bool,
}

/// A capture, durably queued.
#[derive(Debug, Clone)]
pub struct CaptureResult {
    pub capture_id: String,
    pub sha256: String,
    pub size_bytes: u64,
    /// `None` when the deal was never downloaded (no site or window to judge by).
    pub precheck: Option<PrecheckReport>,
}

pub struct FieldDevice {
    queue: Queue,
    keys: Box<dyn KeyStore>,
    clocks: Box<dyn Clocks>,
}

impl FieldDevice {
    /// Opens the device's state in `dir` with the system clocks.
    pub fn open(dir: &str, keys: Box<dyn KeyStore>) -> Result<FieldDevice, SdkError> {
        FieldDevice::with_clocks(dir, keys, Box::new(SystemClocks))
    }

    pub fn with_clocks(
        dir: &str,
        keys: Box<dyn KeyStore>,
        clocks: Box<dyn Clocks>,
    ) -> Result<FieldDevice, SdkError> {
        Ok(FieldDevice {
            queue: Queue::open(dir)?,
            keys,
            clocks,
        })
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    fn api(&self) -> Result<ApiClient, SdkError> {
        let url = self
            .queue
            .setting(session::SERVER_URL)?
            .ok_or(SdkError::NotLoggedIn)?;
        ApiClient::new(&url)
    }

    /// Logs in with this device's id, binding the refresh token to it.
    pub fn login(
        &self,
        server_url: &str,
        username: &str,
        password: &str,
        device_id: &str,
    ) -> Result<(), SdkError> {
        let api = ApiClient::new(server_url)?;
        let tokens = api
            .login(username, password, device_id)
            .map_err(server_error)?;
        self.queue
            .set_setting(session::SERVER_URL, Some(api.base_url()))?;
        self.queue.set_setting(session::USERNAME, Some(username))?;
        self.queue
            .set_setting(session::DEVICE_ID, Some(device_id))?;
        Session::store(&self.queue, &tokens)
    }

    /// Generates (once) the device key and registers its public key. Returns the key, base64.
    pub fn enroll(&self) -> Result<String, SdkError> {
        let key = DeviceKey::load_or_create(self.keys.as_ref())?;
        let api = self.api()?;
        let session = Session::new(&self.queue, &api)?;
        let device_id = self.device_id()?;
        let public_key = key.public_key_base64();
        let token = session.access_token()?;
        api.register_device(&token, &device_id, &public_key)
            .map_err(server_error)?;
        self.queue
            .set_setting(session::ENROLLED, Some(&public_key))?;
        Ok(public_key)
    }

    pub fn device_id(&self) -> Result<String, SdkError> {
        self.queue
            .setting(session::DEVICE_ID)?
            .ok_or(SdkError::NotLoggedIn)
    }

    /// Downloads the caller's deals with their sites, visit windows and node policies.
    pub fn download_deals(&self) -> Result<Vec<CachedDeal>, SdkError> {
        let api = self.api()?;
        let session = Session::new(&self.queue, &api)?;
        let mut templates: BTreeMap<String, BTreeMap<String, NodePolicy>> = BTreeMap::new();
        let mut sites: BTreeMap<String, Vec<CachedSite>> = BTreeMap::new();
        let mut deals = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let token = session.access_token()?;
            let path = match &cursor {
                Some(c) => format!("/deals?cursor={c}"),
                None => "/deals".to_owned(),
            };
            let page = api.get(&token, &path).map_err(server_error)?;
            for summary in page["items"].as_array().cloned().unwrap_or_default() {
                let Some(id) = summary["id"].as_str() else {
                    continue;
                };
                let view = api
                    .get(&token, &format!("/deals/{id}"))
                    .map_err(server_error)?;
                let customer_id = view["customer_id"].as_str().unwrap_or_default().to_owned();
                if !sites.contains_key(&customer_id) {
                    let list = api
                        .get(&token, &format!("/customers/{customer_id}/sites"))
                        .map_err(server_error)?;
                    sites.insert(
                        customer_id.clone(),
                        serde_json::from_value(list).unwrap_or_default(),
                    );
                }
                let template_id = view["template_id"].as_str().unwrap_or_default().to_owned();
                if !templates.contains_key(&template_id) {
                    let policies = api
                        .get(&token, &format!("/pipeline-templates/{template_id}"))
                        .ok()
                        .and_then(|t| {
                            serde_json::from_value::<PipelineTemplate>(t["definition"].clone()).ok()
                        })
                        .map(|t| node_policies(&t))
                        .unwrap_or_default();
                    templates.insert(template_id.clone(), policies);
                }
                let site_id = view["site_id"].as_str();
                let deal = CachedDeal {
                    id: id.to_owned(),
                    title: view["title"].as_str().unwrap_or_default().to_owned(),
                    customer_id: customer_id.clone(),
                    current_node: view["current_node"].as_str().map(str::to_owned),
                    site: site_id.and_then(|sid| {
                        sites
                            .get(&customer_id)
                            .and_then(|list| list.iter().find(|s| s.id == sid).cloned())
                    }),
                    visit: serde_json::from_value::<Visit>(view["visit"].clone()).ok(),
                    node_policies: templates.get(&template_id).cloned().unwrap_or_default(),
                    fetched_at: time::OffsetDateTime::now_utc(),
                };
                let json =
                    serde_json::to_string(&deal).map_err(|e| SdkError::Invalid(e.to_string()))?;
                self.queue.put_deal(&deal.id, &json)?;
                deals.push(deal);
            }
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        Ok(deals)
    }

    /// Deals cached for offline use.
    pub fn cached_deals(&self) -> Result<Vec<CachedDeal>, SdkError> {
        self.queue
            .deals()?
            .iter()
            .map(|j| serde_json::from_str(j).map_err(|e| SdkError::Corrupt(e.to_string())))
            .collect()
    }

    pub fn cached_deal(&self, deal_id: &str) -> Result<Option<CachedDeal>, SdkError> {
        self.queue
            .deal(deal_id)?
            .map(|j| serde_json::from_str(&j).map_err(|e| SdkError::Corrupt(e.to_string())))
            .transpose()
    }

    /// Makes and signs the manifest, copies the photo into the queue untouched (fsynced),
    /// pre-checks it, and records the item, all before returning. Works offline.
    pub fn capture(&self, request: &CaptureRequest) -> Result<CaptureResult, SdkError> {
        let key = DeviceKey::load(self.keys.as_ref())?;
        let device_id = self.device_id()?;
        let bytes = std::fs::read(&request.photo_path)
            .map_err(|e| SdkError::io(&format!("reading {}", request.photo_path), e))?;
        let sha256 = ContentHash::of(&bytes).to_hex();
        let capture_id = uuid::Uuid::now_v7().to_string();
        let fix = request.fix.map(|f| DeviceFix {
            lat: f.lat,
            lon: f.lon,
            accuracy_m: f.accuracy_m,
            is_mock: f.is_mock,
        });
        let manifest = CaptureManifest {
            capture_id: capture_id.clone(),
            device_id,
            sha256: sha256.clone(),
            fix,
            wall_clock: self.clocks.wall_now(),
            monotonic_ms: self.clocks.monotonic_ms(),
            boot_id: self.clocks.boot_id(),
        };
        let manifest_json =
            serde_json::to_string(&manifest).map_err(|e| SdkError::Invalid(e.to_string()))?;
        let signature = key.sign_base64(manifest_json.as_bytes());

        let ext = Path::new(&request.photo_path)
            .extension()
            .and_then(|e| e.to_str())
            .filter(|e| e.len() <= 5 && e.chars().all(|c| c.is_ascii_alphanumeric()))
            .map(|e| e.to_ascii_lowercase())
            .unwrap_or_else(|| "bin".into());
        let photo_file = format!("{capture_id}.{ext}");
        // The bytes that were hashed are the bytes stored: no window for the source to change.
        crate::fsutil::write_durably(&bytes, &self.queue.photos_dir().join(&photo_file))?;

        let check = match self.cached_deal(&request.deal_id)? {
            Some(deal) => {
                let prior = self.queue.prior_captures(&capture_id)?;
                Some(precheck(
                    &bytes,
                    &manifest,
                    &deal,
                    &request.node_key,
                    &prior,
                    &self.clocks.device_clock(),
                    request.analyze_pixels,
                ))
            }
            None => None,
        };
        self.queue.insert(&NewCapture {
            capture_id: capture_id.clone(),
            deal_id: request.deal_id.clone(),
            node_key: request.node_key.clone(),
            tags: request.tags.clone(),
            photo_file,
            manifest_json,
            signature,
            sha256: sha256.clone(),
            size_bytes: bytes.len() as u64,
            phash: check
                .as_ref()
                .and_then(|c| c.phash)
                .map(|p| format!("{:016x}", p.0)),
            precheck: check.as_ref().map(|c| c.report.clone()),
            placed: check.as_ref().and_then(|c| c.placed),
        })?;
        Ok(CaptureResult {
            capture_id,
            sha256,
            size_bytes: bytes.len() as u64,
            precheck: check.map(|c| c.report),
        })
    }

    pub fn queue_items(&self) -> Result<Vec<QueueItem>, SdkError> {
        self.queue.list()
    }

    /// Drains the queue once.
    pub fn sync(
        &self,
        options: SyncOptions,
        progress: &dyn SyncProgress,
    ) -> Result<SyncReport, SdkError> {
        let api = self.api()?;
        Syncer {
            queue: &self.queue,
            api: &api,
            clocks: self.clocks.as_ref(),
            options,
            progress,
        }
        .run()
    }
}

/// The evidence policy of each node that takes photos.
pub fn node_policies(template: &PipelineTemplate) -> BTreeMap<String, NodePolicy> {
    let mut out = BTreeMap::new();
    for node in &template.nodes {
        for requirement in &node.requirements {
            if let Requirement::PhotoSet { policy, .. } = requirement {
                out.insert(node.key.clone(), policy.clone());
            }
        }
    }
    out
}

fn server_error(e: CallError) -> SdkError {
    match e {
        CallError::Transport(m) => SdkError::Network(m),
        CallError::Status {
            status,
            code,
            message,
            ..
        } => SdkError::Server {
            status,
            code,
            message,
        },
    }
}
