//! The CRI calls a kubelet makes, over containerd's unix socket, with the request shapes kubelet sends.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tonic::transport::{Channel, Endpoint, Uri};

pub struct Cri {
    pub rt: RuntimeServiceClient<Channel>,
    pub img: ImageServiceClient<Channel>,
}

/// What a test pod looks like; everything else is what kubelet sends for a plain pod.
#[derive(Clone)]
pub struct PodSpec {
    pub name: String,
    pub handler: String,
    pub cgroup_parent: String,
    pub log_dir: String,
    pub host_network: bool,
    pub shared_pid: bool,
}

impl PodSpec {
    pub fn config(&self) -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: self.name.clone(),
                uid: format!("uid-{}", self.name),
                namespace: "berth-cri-test".into(),
                attempt: 0,
            }),
            // kubelet sends no hostname for a host-network pod (containerd refuses one).
            hostname: if self.host_network {
                String::new()
            } else {
                self.name.clone()
            },
            log_directory: self.log_dir.clone(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: self.cgroup_parent.clone(),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(self.namespaces()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn namespaces(&self) -> NamespaceOption {
        NamespaceOption {
            network: if self.host_network {
                NamespaceMode::Node
            } else {
                NamespaceMode::Pod
            } as i32,
            pid: if self.shared_pid {
                NamespaceMode::Pod
            } else {
                NamespaceMode::Container
            } as i32,
            ipc: NamespaceMode::Pod as i32,
            ..Default::default()
        }
    }
}

/// A container of a test pod.
#[derive(Clone, Default)]
pub struct CtrSpec {
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub memory: i64,
    pub cpu_quota: i64,
    pub cpu_shares: i64,
    pub seccomp_default: bool,
}

pub fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

impl Cri {
    pub async fn connect(socket: &str) -> Result<Cri> {
        let path = socket.to_string();
        let channel = Endpoint::try_from("http://[::]:0")?
            .timeout(Duration::from_secs(120))
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }))
            .await
            .with_context(|| format!("connect to {socket}"))?;
        Ok(Cri {
            rt: RuntimeServiceClient::new(channel.clone()),
            img: ImageServiceClient::new(channel),
        })
    }

    pub async fn version(&mut self) -> Result<VersionResponse> {
        Ok(self
            .rt
            .version(VersionRequest {
                version: "v1".into(),
            })
            .await?
            .into_inner())
    }

    pub async fn image_present(&mut self, image: &str) -> Result<bool> {
        let r = self
            .img
            .image_status(ImageStatusRequest {
                image: Some(ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await?
            .into_inner();
        Ok(r.image.is_some())
    }

    pub async fn run_pod(&mut self, pod: &PodSpec) -> Result<String> {
        let r = self
            .rt
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(pod.config()),
                runtime_handler: pod.handler.clone(),
            })
            .await
            .with_context(|| format!("RunPodSandbox {} (handler {})", pod.name, pod.handler))?;
        Ok(r.into_inner().pod_sandbox_id)
    }

    /// The sandbox status and containerd's verbose info (pid, runtimeSpec, ...).
    pub async fn pod_status(&mut self, id: &str) -> Result<(PodSandboxStatus, serde_json::Value)> {
        let r = self
            .rt
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: id.into(),
                verbose: true,
            })
            .await
            .with_context(|| format!("PodSandboxStatus {id}"))?
            .into_inner();
        Ok((r.status.context("no status")?, info(&r.info)?))
    }

    pub async fn stop_pod(&mut self, id: &str) -> Result<()> {
        self.rt
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.into(),
            })
            .await
            .with_context(|| format!("StopPodSandbox {id}"))?;
        Ok(())
    }

    pub async fn remove_pod(&mut self, id: &str) -> Result<()> {
        self.rt
            .remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.into(),
            })
            .await
            .with_context(|| format!("RemovePodSandbox {id}"))?;
        Ok(())
    }

    pub async fn create(&mut self, pod_id: &str, pod: &PodSpec, c: &CtrSpec) -> Result<String> {
        let resources = LinuxContainerResources {
            cpu_period: if c.cpu_quota > 0 { 100_000 } else { 0 },
            cpu_quota: c.cpu_quota,
            cpu_shares: c.cpu_shares,
            memory_limit_in_bytes: c.memory,
            ..Default::default()
        };
        let seccomp = c.seccomp_default.then(|| SecurityProfile {
            profile_type: security_profile::ProfileType::RuntimeDefault as i32,
            localhost_ref: String::new(),
        });
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: c.name.clone(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: c.image.clone(),
                ..Default::default()
            }),
            command: c.command.clone(),
            log_path: format!("{}.log", c.name),
            linux: Some(LinuxContainerConfig {
                resources: Some(resources),
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: Some(pod.namespaces()),
                    seccomp,
                    ..Default::default()
                }),
            }),
            ..Default::default()
        };
        let r = self
            .rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod_id.into(),
                config: Some(config),
                sandbox_config: Some(pod.config()),
            })
            .await
            .with_context(|| format!("CreateContainer {} in pod {}", c.name, pod.name))?;
        Ok(r.into_inner().container_id)
    }

    pub async fn start(&mut self, id: &str) -> Result<()> {
        self.rt
            .start_container(StartContainerRequest {
                container_id: id.into(),
            })
            .await
            .with_context(|| format!("StartContainer {id}"))?;
        Ok(())
    }

    /// The container's status and containerd's verbose info (pid, runtimeSpec, ...).
    pub async fn status(&mut self, id: &str) -> Result<(ContainerStatus, serde_json::Value)> {
        let r = self
            .rt
            .container_status(ContainerStatusRequest {
                container_id: id.into(),
                verbose: true,
            })
            .await
            .with_context(|| format!("ContainerStatus {id}"))?
            .into_inner();
        Ok((r.status.context("no status")?, info(&r.info)?))
    }

    pub async fn exec(&mut self, id: &str, cmd: &[&str]) -> Result<ExecSyncResponse> {
        Ok(self
            .rt
            .exec_sync(ExecSyncRequest {
                container_id: id.into(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: 30,
            })
            .await
            .with_context(|| format!("ExecSync {cmd:?} in {id}"))?
            .into_inner())
    }

    pub async fn update(&mut self, id: &str, memory: i64, cpu_quota: i64) -> Result<()> {
        self.rt
            .update_container_resources(UpdateContainerResourcesRequest {
                container_id: id.into(),
                linux: Some(LinuxContainerResources {
                    cpu_period: 100_000,
                    cpu_quota,
                    memory_limit_in_bytes: memory,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .with_context(|| format!("UpdateContainerResources {id}"))?;
        Ok(())
    }

    pub async fn stop(&mut self, id: &str, grace_s: i64) -> Result<()> {
        self.rt
            .stop_container(StopContainerRequest {
                container_id: id.into(),
                timeout: grace_s,
            })
            .await
            .with_context(|| format!("StopContainer {id}"))?;
        Ok(())
    }

    pub async fn remove(&mut self, id: &str) -> Result<()> {
        self.rt
            .remove_container(RemoveContainerRequest {
                container_id: id.into(),
            })
            .await
            .with_context(|| format!("RemoveContainer {id}"))?;
        Ok(())
    }

    pub async fn pods(&mut self) -> Result<Vec<PodSandbox>> {
        Ok(self
            .rt
            .list_pod_sandbox(ListPodSandboxRequest::default())
            .await?
            .into_inner()
            .items)
    }
}

fn info(map: &HashMap<String, String>) -> Result<serde_json::Value> {
    match map.get("info") {
        Some(raw) => serde_json::from_str(raw).context("containerd's verbose info"),
        None => Ok(serde_json::Value::Null),
    }
}
