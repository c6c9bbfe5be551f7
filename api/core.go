package api

// Namespace groups namespaced objects.
type Namespace struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Status     NamespaceStatus `json:"status,omitempty"`
}

// NamespaceStatus reports a namespace's phase.
type NamespaceStatus struct {
	Phase string `json:"phase,omitempty"` // Active
}

// Node is an edge board running `flotilla agent`.
type Node struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       NodeSpec   `json:"spec,omitempty"`
	Status     NodeStatus `json:"status,omitempty"`
}

// NodeSpec is what an operator sets on a node.
type NodeSpec struct {
	// Unschedulable keeps new pods off the node (cordon).
	Unschedulable bool `json:"unschedulable,omitempty"`
	// Taints repel pods that do not tolerate them.
	Taints []Taint `json:"taints,omitempty"`
}

// Taint marks a node so that only pods tolerating it land (NoSchedule),
// prefer to land elsewhere (PreferNoSchedule) or stay (NoExecute).
type Taint struct {
	Key       string `json:"key"`
	Value     string `json:"value,omitempty"`
	Effect    string `json:"effect"` // NoSchedule, PreferNoSchedule, NoExecute
	TimeAdded Time   `json:"timeAdded,omitzero"`
}

// TaintNodeUnreachable is set by the control plane on a node whose agent
// stopped heartbeating.
const TaintNodeUnreachable = "node.kubernetes.io/unreachable"

// DefaultUnreachableToleration is how long a pod stays bound to an
// unreachable node before it is evicted and replaced elsewhere.
const DefaultUnreachableToleration = 300

// Taint effects.
const (
	TaintNoSchedule       = "NoSchedule"
	TaintPreferNoSchedule = "PreferNoSchedule"
	TaintNoExecute        = "NoExecute"
)

// Toleration lets a pod land on (or stay on) a tainted node.
type Toleration struct {
	Key      string `json:"key,omitempty"`
	Operator string `json:"operator,omitempty"` // Equal (default) or Exists
	Value    string `json:"value,omitempty"`
	Effect   string `json:"effect,omitempty"` // empty matches every effect
	// TolerationSeconds bounds how long a NoExecute taint is tolerated.
	TolerationSeconds *int64 `json:"tolerationSeconds,omitempty"`
}

// Tolerates reports whether the toleration matches the taint.
func (t Toleration) Tolerates(taint Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Operator == "Exists" {
		return t.Key == "" || t.Key == taint.Key
	}
	return t.Key == taint.Key && t.Value == taint.Value
}

// NodeStatus is what the agent reports.
type NodeStatus struct {
	Capacity    ResourceList    `json:"capacity,omitempty"`
	Allocatable ResourceList    `json:"allocatable,omitempty"`
	Conditions  []Condition     `json:"conditions,omitempty"`
	Addresses   []NodeAddress   `json:"addresses,omitempty"`
	NodeInfo    NodeSystemInfo  `json:"nodeInfo,omitempty"`
	Runtimes    []string        `json:"runtimes,omitempty"` // "wasm", and "oci" when containerd answers
	DaemonPorts NodeDaemonPorts `json:"daemonEndpoints,omitempty"`
}

// NodeAddress is one address of a node.
type NodeAddress struct {
	Type    string `json:"type"` // InternalIP, Hostname
	Address string `json:"address"`
}

// NodeSystemInfo describes the board.
type NodeSystemInfo struct {
	OperatingSystem string `json:"operatingSystem,omitempty"`
	Architecture    string `json:"architecture,omitempty"`
	Variant         string `json:"variant,omitempty"`
	KernelVersion   string `json:"kernelVersion,omitempty"`
	AgentVersion    string `json:"agentVersion,omitempty"`
}

// NodeDaemonPorts tells clients the port range the agent hands to pods.
type NodeDaemonPorts struct {
	PodPortRange string `json:"podPortRange,omitempty"`
}

// NodeReady is the node condition kept fresh by agent heartbeats.
const NodeReady = "Ready"

// InternalIP returns the node's InternalIP address, or "".
func (n *Node) InternalIP() string {
	for _, a := range n.Status.Addresses {
		if a.Type == "InternalIP" {
			return a.Address
		}
	}
	return ""
}

// Ready reports whether the node's Ready condition is True.
func (n *Node) Ready() bool {
	c := FindCondition(n.Status.Conditions, NodeReady)
	return c != nil && c.Status == ConditionTrue
}

// Pod is one or more containers run together on one node.
type Pod struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       PodSpec   `json:"spec"`
	Status     PodStatus `json:"status,omitempty"`
}

// PodSpec is the desired state of a pod.
type PodSpec struct {
	Containers    []Container       `json:"containers"`
	RestartPolicy string            `json:"restartPolicy,omitempty"` // Always, OnFailure, Never
	NodeSelector  map[string]string `json:"nodeSelector,omitempty"`
	// NodeName is set by the scheduler when it binds the pod.
	NodeName string `json:"nodeName,omitempty"`
	// ActiveDeadlineSeconds bounds a pod's run time; for wasm command
	// modules it is also their CPU-time limit.
	ActiveDeadlineSeconds         *int64       `json:"activeDeadlineSeconds,omitempty"`
	TerminationGracePeriodSeconds *int64       `json:"terminationGracePeriodSeconds,omitempty"`
	Tolerations                   []Toleration `json:"tolerations,omitempty"`
	Volumes                       []Volume     `json:"volumes,omitempty"`
	// Hostname and Subdomain give a pod a stable DNS identity
	// (StatefulSet pods get hostname = pod name).
	Hostname  string `json:"hostname,omitempty"`
	Subdomain string `json:"subdomain,omitempty"`
}

// Volume is storage a pod's containers can mount. Exactly one source is set.
type Volume struct {
	Name                  string                             `json:"name"`
	EmptyDir              *EmptyDirVolumeSource              `json:"emptyDir,omitempty"`
	HostPath              *HostPathVolumeSource              `json:"hostPath,omitempty"`
	ConfigMap             *ConfigMapVolumeSource             `json:"configMap,omitempty"`
	Secret                *SecretVolumeSource                `json:"secret,omitempty"`
	PersistentVolumeClaim *PersistentVolumeClaimVolumeSource `json:"persistentVolumeClaim,omitempty"`
}

// EmptyDirVolumeSource is a scratch directory that lives as long as the pod.
type EmptyDirVolumeSource struct {
	SizeLimit *Quantity `json:"sizeLimit,omitempty"`
}

// HostPathVolumeSource is a directory of the node.
type HostPathVolumeSource struct {
	Path string `json:"path"`
	Type string `json:"type,omitempty"` // "", Directory, DirectoryOrCreate
}

// KeyToPath projects one key of a ConfigMap or Secret to a file.
type KeyToPath struct {
	Key  string `json:"key"`
	Path string `json:"path"`
}

// ConfigMapVolumeSource mounts a ConfigMap's keys as files (read-only).
type ConfigMapVolumeSource struct {
	Name     string      `json:"name"`
	Items    []KeyToPath `json:"items,omitempty"`
	Optional *bool       `json:"optional,omitempty"`
}

// SecretVolumeSource mounts a Secret's keys as files (read-only).
type SecretVolumeSource struct {
	SecretName string      `json:"secretName"`
	Items      []KeyToPath `json:"items,omitempty"`
	Optional   *bool       `json:"optional,omitempty"`
}

// PersistentVolumeClaimVolumeSource mounts a node-local volume that
// outlives the pod (StatefulSet volumeClaimTemplates).
type PersistentVolumeClaimVolumeSource struct {
	ClaimName string `json:"claimName"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

// VolumeMount places a volume in a container; for wasm modules it is a
// WASI preopened directory.
type VolumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
	SubPath   string `json:"subPath,omitempty"`
}

// Restart policies.
const (
	RestartAlways    = "Always"
	RestartOnFailure = "OnFailure"
	RestartNever     = "Never"
)

// Container runtimes.
const (
	RuntimeWasm = "wasm"
	RuntimeOCI  = "oci"
)

// Container is one process of a pod: a wasm module (or, later, an OCI image).
type Container struct {
	Name string `json:"name"`
	// Runtime is wasm or oci; when empty it follows from Image (see
	// DefaultRuntime): a module reference NAME:TAG or NAME@sha256:HEX is
	// wasm, any other image reference oci.
	Runtime string `json:"runtime,omitempty"`
	// Image is the module reference NAME:TAG or NAME@sha256:HEX (wasm) or
	// an OCI image reference [HOST/]PATH[:TAG][@DIGEST] (oci).
	Image string `json:"image"`
	// Command replaces the image's entrypoint and Args its cmd, as in
	// Kubernetes. Command and WorkingDir are for OCI containers only; a
	// wasm module gets Args as its argv after the module name.
	Command    []string             `json:"command,omitempty"`
	Args       []string             `json:"args,omitempty"`
	WorkingDir string               `json:"workingDir,omitempty"`
	Env        []EnvVar             `json:"env,omitempty"`
	Ports      []ContainerPort      `json:"ports,omitempty"`
	Resources  ResourceRequirements `json:"resources,omitempty"`
	EnvFrom    []EnvFromSource      `json:"envFrom,omitempty"`
	// VolumeMounts place the pod's volumes in this container.
	VolumeMounts []VolumeMount `json:"volumeMounts,omitempty"`
	// ReadinessProbe decides when the container is ready; without one an
	// HTTP module is ready when GET / answers and a command module when it
	// has started.
	ReadinessProbe *Probe `json:"readinessProbe,omitempty"`
	// Wasm tunes how a wasm module is run; nil means a command module
	// unless the container declares ports (then an HTTP module).
	Wasm *WasmOptions `json:"wasm,omitempty"`
}

// WasmOptions says how the agent runs a wasm module.
type WasmOptions struct {
	// Mode: command (run _start to completion), http (persistent pool of
	// instances serving HTTP/1.1 over stdin/stdout) or cgi (one instance
	// per request). Default: http when the container has ports, else command.
	Mode string `json:"mode,omitempty"`
	// Instances is the size of the persistent pool (default 2).
	Instances int32 `json:"instances,omitempty"`
	// RequestTimeoutSeconds is the CPU-time limit of one HTTP request
	// (default 30). 0 turns the limit off, which lets the module run
	// without wazero's termination checks, about 2.5 times faster, at the
	// price that a request stuck in a loop keeps its instance (and a core)
	// until the agent restarts.
	RequestTimeoutSeconds *int32 `json:"requestTimeoutSeconds,omitempty"`
}

// Wasm modes.
const (
	WasmCommand = "command"
	WasmHTTP    = "http"
	WasmCGI     = "cgi"
)

// EnvVar is one environment variable.
type EnvVar struct {
	Name      string        `json:"name"`
	Value     string        `json:"value,omitempty"`
	ValueFrom *EnvVarSource `json:"valueFrom,omitempty"`
}

// EnvVarSource takes a variable's value from a ConfigMap or Secret key, or
// from the pod's own fields (metadata.name, metadata.namespace,
// spec.nodeName, status.hostIP).
type EnvVarSource struct {
	ConfigMapKeyRef *KeySelector         `json:"configMapKeyRef,omitempty"`
	SecretKeyRef    *KeySelector         `json:"secretKeyRef,omitempty"`
	FieldRef        *ObjectFieldSelector `json:"fieldRef,omitempty"`
}

// KeySelector names one key of a ConfigMap or Secret.
type KeySelector struct {
	Name     string `json:"name"`
	Key      string `json:"key"`
	Optional *bool  `json:"optional,omitempty"`
}

// ObjectFieldSelector names a field of the pod.
type ObjectFieldSelector struct {
	FieldPath string `json:"fieldPath"`
}

// EnvFromSource imports every key of a ConfigMap or Secret.
type EnvFromSource struct {
	Prefix       string                `json:"prefix,omitempty"`
	ConfigMapRef *LocalObjectReference `json:"configMapRef,omitempty"`
	SecretRef    *LocalObjectReference `json:"secretRef,omitempty"`
}

// LocalObjectReference names an object in the pod's namespace.
type LocalObjectReference struct {
	Name     string `json:"name"`
	Optional *bool  `json:"optional,omitempty"`
}

// Probe checks a container. Exactly one action is set.
type Probe struct {
	HTTPGet             *HTTPGetAction `json:"httpGet,omitempty"`
	InitialDelaySeconds int32          `json:"initialDelaySeconds,omitempty"`
	PeriodSeconds       int32          `json:"periodSeconds,omitempty"`    // default 10
	TimeoutSeconds      int32          `json:"timeoutSeconds,omitempty"`   // default 1
	SuccessThreshold    int32          `json:"successThreshold,omitempty"` // default 1
	FailureThreshold    int32          `json:"failureThreshold,omitempty"` // default 3
}

// HTTPGetAction probes with GET http://<endpoint><path>.
type HTTPGetAction struct {
	Path string `json:"path,omitempty"`
	// Port is a container port number or name; empty means the first port.
	Port *IntOrString `json:"port,omitempty"`
}

// ContainerPort is a port the container listens on. For wasm HTTP modules
// the agent owns the listener on the node address and an allocated port.
type ContainerPort struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"` // TCP, UDP
}

// ResourceRequirements are requests (what the scheduler reserves) and
// limits (what the runtime enforces).
type ResourceRequirements struct {
	Requests ResourceList `json:"requests,omitempty"`
	Limits   ResourceList `json:"limits,omitempty"`
}

// ResourceList maps a resource name (cpu, memory) to a quantity.
type ResourceList map[string]Quantity

// PodStatus is what the agent observes.
type PodStatus struct {
	// Phase: Pending, Running, Succeeded, Failed, Unknown.
	Phase             string            `json:"phase,omitempty"`
	Conditions        []Condition       `json:"conditions,omitempty"`
	Reason            string            `json:"reason,omitempty"`
	Message           string            `json:"message,omitempty"`
	HostIP            string            `json:"hostIP,omitempty"`
	PodIP             string            `json:"podIP,omitempty"`
	StartTime         Time              `json:"startTime,omitzero"`
	ContainerStatuses []ContainerStatus `json:"containerStatuses,omitempty"`
}

// Pod phases.
const (
	PodPending   = "Pending"
	PodRunning   = "Running"
	PodSucceeded = "Succeeded"
	PodFailed    = "Failed"
	PodUnknown   = "Unknown"
)

// Pod condition types.
const (
	PodScheduled    = "PodScheduled"
	PodReady        = "Ready"
	ContainersReady = "ContainersReady"
)

// ContainerStatus is the observed state of one container.
type ContainerStatus struct {
	Name    string `json:"name"`
	Runtime string `json:"runtime,omitempty"`
	Image   string `json:"image"`
	ImageID string `json:"imageID,omitempty"` // sha256:HEX
	// ContainerID is "containerd://<id>" for an OCI container.
	ContainerID  string         `json:"containerID,omitempty"`
	Ready        bool           `json:"ready"`
	Started      bool           `json:"started"`
	RestartCount int32          `json:"restartCount"`
	State        ContainerState `json:"state,omitempty"`
	LastState    ContainerState `json:"lastState,omitempty"`
	// Ports are the endpoints the agent serves for this container.
	Ports []PortStatus `json:"ports,omitempty"`
}

// PortStatus is where a container port is reachable: node address and an
// agent-allocated host port.
type PortStatus struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int32  `json:"containerPort"`
	HostIP        string `json:"hostIP"`
	HostPort      int32  `json:"hostPort"`
	Protocol      string `json:"protocol,omitempty"`
}

// ContainerState holds exactly one of its fields.
type ContainerState struct {
	Waiting    *ContainerStateWaiting    `json:"waiting,omitempty"`
	Running    *ContainerStateRunning    `json:"running,omitempty"`
	Terminated *ContainerStateTerminated `json:"terminated,omitempty"`
}

// ContainerStateWaiting explains why a container is not running yet.
type ContainerStateWaiting struct {
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// ContainerStateRunning says since when a container runs.
type ContainerStateRunning struct {
	StartedAt Time `json:"startedAt,omitzero"`
}

// ContainerStateTerminated records how a container ended.
type ContainerStateTerminated struct {
	ExitCode   int32  `json:"exitCode"`
	Reason     string `json:"reason,omitempty"`
	Message    string `json:"message,omitempty"`
	StartedAt  Time   `json:"startedAt,omitzero"`
	FinishedAt Time   `json:"finishedAt,omitzero"`
}

// IsTerminal reports whether the pod has finished for good.
func (p *Pod) IsTerminal() bool {
	return p.Status.Phase == PodSucceeded || p.Status.Phase == PodFailed
}

// IsReady reports whether the pod's Ready condition is True.
func (p *Pod) IsReady() bool {
	c := FindCondition(p.Status.Conditions, PodReady)
	return c != nil && c.Status == ConditionTrue
}

// Requests sums the pod's container requests.
func (p *Pod) Requests() (milliCPU, memBytes int64) {
	for _, c := range p.Spec.Containers {
		if q, ok := c.Resources.Requests["cpu"]; ok {
			milliCPU += q.MilliValue()
		}
		if q, ok := c.Resources.Requests["memory"]; ok {
			memBytes += q.Value()
		}
	}
	return
}
