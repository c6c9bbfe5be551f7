package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/flotilla-edge/flotilla/cmd/flotilla/internal/config"
	"github.com/flotilla-edge/flotilla/edgeagent"
	"github.com/flotilla-edge/flotilla/edgeagent/oci"
)

// containerdFlags adds the OCI runtime's flags to agent or up; each is
// also read from FLOTILLA_<KEY> and the config file through viper.
func (r *root) containerdFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("containerd-socket", edgeagent.DefaultContainerdSocket, "containerd socket for OCI containers (K3s: /run/k3s/containerd/containerd.sock; \"off\" runs wasm only) (env FLOTILLA_CONTAINERD_SOCKET)")
	f.String("containerd-namespace", oci.DefaultNamespace, "containerd namespace of the agent's containers (env FLOTILLA_CONTAINERD_NAMESPACE)")
	f.String("containerd-snapshotter", "", "containerd snapshotter (default: the namespace's default, else overlayfs if it works, else native) (env FLOTILLA_CONTAINERD_SNAPSHOTTER)")
	f.Bool("image-registry-pull", true, "pull OCI images missing on the node from their registry; false for air-gapped fleets that use flotilla image import (env FLOTILLA_IMAGE_REGISTRY_PULL)")
}

// containerdConfig resolves the OCI runtime settings of cmd (flag > env >
// file; registries from the file only). The flags are bound to the viper
// keys here, for the command that runs: agent and up both have them, and a
// binding made while building the command tree would leave only the last
// command's flags read.
func (r *root) containerdConfig(cmd *cobra.Command) (edgeagent.ContainerdConfig, error) {
	for flag, key := range map[string]string{
		"containerd-socket":      config.KeyContainerdSocket,
		"containerd-namespace":   config.KeyContainerdNamespace,
		"containerd-snapshotter": config.KeyContainerdSnapshotter,
		"image-registry-pull":    config.KeyImageRegistryPull,
	} {
		if err := r.v.BindPFlag(key, cmd.Flags().Lookup(flag)); err != nil {
			return edgeagent.ContainerdConfig{}, fmt.Errorf("flag --%s: %w", flag, err)
		}
	}
	regs, err := config.Registries(r.v)
	if err != nil {
		return edgeagent.ContainerdConfig{}, err
	}
	return edgeagent.ContainerdConfig{
		Socket:         r.v.GetString(config.KeyContainerdSocket),
		Namespace:      r.v.GetString(config.KeyContainerdNamespace),
		Snapshotter:    r.v.GetString(config.KeyContainerdSnapshotter),
		NoRegistryPull: !r.v.GetBool(config.KeyImageRegistryPull),
		Registries:     regs,
	}, nil
}
