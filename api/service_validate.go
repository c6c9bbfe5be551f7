package api

import (
	"fmt"
	"net/netip"
	"regexp"
)

// portNameRe is an IANA service name: what a named targetPort may be.
var portNameRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func validateService(fe *FieldErrors, s *Service) {
	sp := &s.Spec
	switch sp.Type {
	case ServiceTypeClusterIP, ServiceTypeNodePort, ServiceTypeLoadBalancer:
	case ServiceTypeExternalName:
		validateExternalName(fe, sp)
		return
	default:
		fe.add("spec.type", "%q is not ClusterIP, NodePort, LoadBalancer or ExternalName", sp.Type)
		return
	}
	if sp.ExternalName != "" {
		fe.add("spec.externalName", "may only be set when spec.type is ExternalName, not %s", sp.Type)
	}
	if err := ValidLabels(sp.Selector); err != nil {
		fe.add("spec.selector", "%v", err)
	}
	switch {
	case sp.ClusterIP == "" || sp.ClusterIP == ClusterIPNone:
	default:
		if !isIPv4(sp.ClusterIP) {
			fe.add("spec.clusterIP", "%q is not an IPv4 address, \"None\" or empty", sp.ClusterIP)
		}
	}
	if s.Headless() && s.UsesNodePorts() {
		fe.add("spec.clusterIP", "may not be None when spec.type is %s", sp.Type)
	}
	if len(sp.Ports) == 0 && !s.Headless() {
		fe.add("spec.ports", "at least one port is required")
	}
	validateServicePorts(fe, s)
	switch sp.SessionAffinity {
	case AffinityNone, AffinityClientIP:
	default:
		fe.add("spec.sessionAffinity", "%q is not None or ClientIP", sp.SessionAffinity)
	}
	if c := sp.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		if sp.SessionAffinity != AffinityClientIP {
			fe.add("spec.sessionAffinityConfig", "may only be set when spec.sessionAffinity is ClientIP")
		} else if t := *c.ClientIP.TimeoutSeconds; t < 1 || t > 86400 {
			fe.add("spec.sessionAffinityConfig.clientIP.timeoutSeconds", "must be between 1 and 86400, got %d", t)
		}
	}
	switch {
	case sp.ExternalTrafficPolicy == "":
	case !s.UsesNodePorts():
		fe.add("spec.externalTrafficPolicy", "may only be set when spec.type is NodePort or LoadBalancer, not %s", sp.Type)
	case sp.ExternalTrafficPolicy != TrafficPolicyCluster && sp.ExternalTrafficPolicy != TrafficPolicyLocal:
		fe.add("spec.externalTrafficPolicy", "%q is not Cluster or Local", sp.ExternalTrafficPolicy)
	}
	for i, ip := range sp.ExternalIPs {
		if !isIPv4(ip) {
			fe.add(fmt.Sprintf("spec.externalIPs[%d]", i), "%q is not an IPv4 address", ip)
		}
	}
	if sp.LoadBalancerIP != "" {
		if sp.Type != ServiceTypeLoadBalancer {
			fe.add("spec.loadBalancerIP", "may only be set when spec.type is LoadBalancer, not %s", sp.Type)
		} else if !isIPv4(sp.LoadBalancerIP) {
			fe.add("spec.loadBalancerIP", "%q is not an IPv4 address", sp.LoadBalancerIP)
		}
	}
}

func validateExternalName(fe *FieldErrors, sp *ServiceSpec) {
	if sp.ExternalName == "" {
		fe.add("spec.externalName", "is required when spec.type is ExternalName")
	} else if err := ValidDNSSubdomain(sp.ExternalName); err != nil {
		fe.add("spec.externalName", "must be a DNS name: %v", err)
	}
	if sp.ClusterIP != "" {
		fe.add("spec.clusterIP", "must be empty when spec.type is ExternalName")
	}
	for i, p := range sp.Ports {
		if p.NodePort != 0 {
			fe.add(fmt.Sprintf("spec.ports[%d].nodePort", i), "may not be used when spec.type is ExternalName")
		}
	}
}

func validateServicePorts(fe *FieldErrors, s *Service) {
	sp := &s.Spec
	seen := map[string]int{}
	names := map[string]bool{}
	nodePorts := map[string]bool{}
	for i, p := range sp.Ports {
		f := fmt.Sprintf("spec.ports[%d]", i)
		if len(sp.Ports) > 1 && p.Name == "" {
			fe.add(f+".name", "is required when a service has more than one port")
		} else if p.Name != "" {
			if err := ValidDNSLabel(p.Name); err != nil {
				fe.add(f+".name", "%v", err)
			} else if names[p.Name] {
				fe.add(f+".name", "duplicate name %q", p.Name)
			}
			names[p.Name] = true
		}
		if p.Protocol != "TCP" && p.Protocol != "UDP" {
			fe.add(f+".protocol", "%q is not TCP or UDP", p.Protocol)
		}
		if p.Port < 1 || p.Port > 65535 {
			fe.add(f+".port", "must be between 1 and 65535, got %d", p.Port)
		} else {
			k := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
			if _, dup := seen[k]; dup {
				fe.add(f+".port", "duplicate port %s", k)
			}
			seen[k] = i
		}
		if p.TargetPort.IsString {
			if n := p.TargetPort.StrVal; len(n) > 15 || !portNameRe.MatchString(n) {
				fe.add(f+".targetPort", "%q is not a port number or a container port name (at most 15 lower case letters, digits and '-')", n)
			}
		} else if t := p.TargetPort.IntVal; t < 1 || t > 65535 {
			fe.add(f+".targetPort", "must be between 1 and 65535, got %d", t)
		}
		switch {
		case p.NodePort == 0:
		case !s.UsesNodePorts():
			fe.add(f+".nodePort", "may not be used when spec.type is %s", sp.Type)
		case p.NodePort < NodePortMin || p.NodePort > NodePortMax:
			fe.add(f+".nodePort", "must be between %d and %d, got %d", NodePortMin, NodePortMax, p.NodePort)
		default:
			k := fmt.Sprintf("%d/%s", p.NodePort, p.Protocol)
			if nodePorts[k] {
				fe.add(f+".nodePort", "duplicate node port %s", k)
			}
			nodePorts[k] = true
		}
	}
}

func isIPv4(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}
