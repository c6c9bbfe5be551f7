package api

// Service exposes a set of pods (chosen by a label selector) on a stable
// virtual IP and port, load-balanced on every node by the agent (see
// docs/networking.md).
type Service struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       ServiceSpec   `json:"spec"`
	Status     ServiceStatus `json:"status,omitempty"`
}

// ServiceSpec is the desired shape of a service.
type ServiceSpec struct {
	// Type: ClusterIP (default), NodePort, LoadBalancer or ExternalName.
	Type string `json:"type,omitempty"`
	// Selector picks the pods behind the service; without one the
	// EndpointSlice of the same name is managed by the user.
	Selector map[string]string `json:"selector,omitempty"`
	Ports    []ServicePort     `json:"ports,omitempty"`
	// ClusterIP is allocated from the server's service CIDR when empty;
	// "None" makes the service headless (no VIP, no load balancing).
	ClusterIP string `json:"clusterIP,omitempty"`
	// ExternalName is the DNS name an ExternalName service aliases.
	ExternalName string `json:"externalName,omitempty"`
	// SessionAffinity: None (default) or ClientIP.
	SessionAffinity       string                 `json:"sessionAffinity,omitempty"`
	SessionAffinityConfig *SessionAffinityConfig `json:"sessionAffinityConfig,omitempty"`
	// ExternalTrafficPolicy (NodePort, LoadBalancer): Cluster (default)
	// sends outside traffic to any ready pod, Local only to pods on the
	// node that received it.
	ExternalTrafficPolicy string `json:"externalTrafficPolicy,omitempty"`
	// ExternalIPs are extra addresses a node answers the service's ports on.
	ExternalIPs []string `json:"externalIPs,omitempty"`
	// LoadBalancerIP asks for a specific LoadBalancer address.
	LoadBalancerIP string `json:"loadBalancerIP,omitempty"`
}

// ServicePort is one port of a service.
type ServicePort struct {
	// Name is required when a service has more than one port; endpoint
	// ports carry the same name.
	Name     string `json:"name,omitempty"`
	Protocol string `json:"protocol,omitempty"` // TCP (default) or UDP
	Port     int32  `json:"port"`
	// TargetPort is a container port number or name; default Port.
	TargetPort IntOrString `json:"targetPort"`
	// NodePort (NodePort, LoadBalancer) is allocated from 30000-32767
	// when left 0.
	NodePort int32 `json:"nodePort,omitempty"`
}

// SessionAffinityConfig tunes ClientIP affinity.
type SessionAffinityConfig struct {
	ClientIP *ClientIPConfig `json:"clientIP,omitempty"`
}

// ClientIPConfig bounds how long a client sticks to one backend.
type ClientIPConfig struct {
	TimeoutSeconds *int32 `json:"timeoutSeconds,omitempty"` // default 10800
}

// ServiceStatus is what the control plane reports.
type ServiceStatus struct {
	LoadBalancer LoadBalancerStatus `json:"loadBalancer,omitempty"`
}

// LoadBalancerStatus lists where a LoadBalancer service is reachable.
type LoadBalancerStatus struct {
	Ingress []LoadBalancerIngress `json:"ingress,omitempty"`
}

// LoadBalancerIngress is one address of a LoadBalancer service.
type LoadBalancerIngress struct {
	IP string `json:"ip,omitempty"`
}

// Service types and policies.
const (
	ServiceTypeClusterIP    = "ClusterIP"
	ServiceTypeNodePort     = "NodePort"
	ServiceTypeLoadBalancer = "LoadBalancer"
	ServiceTypeExternalName = "ExternalName"

	ClusterIPNone = "None"

	AffinityNone     = "None"
	AffinityClientIP = "ClientIP"

	TrafficPolicyCluster = "Cluster"
	TrafficPolicyLocal   = "Local"

	// DefaultAffinityTimeoutSeconds is Kubernetes' default (3 hours).
	DefaultAffinityTimeoutSeconds = 10800

	// NodePortMin and NodePortMax bound node ports.
	NodePortMin = 30000
	NodePortMax = 32767
)

// Headless reports whether the service has no virtual IP.
func (s *Service) Headless() bool { return s.Spec.ClusterIP == ClusterIPNone }

// UsesNodePorts reports whether the service's ports get node ports.
func (s *Service) UsesNodePorts() bool {
	return s.Spec.Type == ServiceTypeNodePort || s.Spec.Type == ServiceTypeLoadBalancer
}

// AffinityTimeoutSeconds is the ClientIP affinity timeout, 0 without
// affinity.
func (s *Service) AffinityTimeoutSeconds() int32 {
	if s.Spec.SessionAffinity != AffinityClientIP {
		return 0
	}
	if c := s.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		return *c.ClientIP.TimeoutSeconds
	}
	return DefaultAffinityTimeoutSeconds
}

func defaultService(s *Service) {
	sp := &s.Spec
	if sp.Type == "" {
		sp.Type = ServiceTypeClusterIP
	}
	if sp.Type == ServiceTypeExternalName {
		return
	}
	if sp.SessionAffinity == "" {
		sp.SessionAffinity = AffinityNone
	}
	if sp.SessionAffinity == AffinityClientIP {
		if sp.SessionAffinityConfig == nil {
			sp.SessionAffinityConfig = &SessionAffinityConfig{}
		}
		if sp.SessionAffinityConfig.ClientIP == nil {
			sp.SessionAffinityConfig.ClientIP = &ClientIPConfig{}
		}
		if sp.SessionAffinityConfig.ClientIP.TimeoutSeconds == nil {
			sp.SessionAffinityConfig.ClientIP.TimeoutSeconds = Int32(DefaultAffinityTimeoutSeconds)
		}
	}
	if s.UsesNodePorts() && sp.ExternalTrafficPolicy == "" {
		sp.ExternalTrafficPolicy = TrafficPolicyCluster
	}
	for i := range sp.Ports {
		p := &sp.Ports[i]
		if p.Protocol == "" {
			p.Protocol = "TCP"
		}
		if !p.TargetPort.IsString && p.TargetPort.IntVal == 0 {
			p.TargetPort = FromInt(p.Port)
		}
	}
}
