// Command pulumi-language-python is a minimal Pulumi language host for Python programs.
//
// Why our own: upstream's host lives in the nested module
// github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3, which is untagged and
// which the Go module proxy reachable here does not serve at any version (every request,
// `@v/list` included, answers 403 "This module version is not available"). This host
// implements the parts of the LanguageRuntime protocol that `pulumi preview/up/refresh/
// destroy` use, the way upstream does, with upstream's own building blocks from the
// pulumi SDK module:
//
//   - Run starts `python <dir of this binary>/pulumi-language-python-exec --monitor ...`
//     (the SDK's exec shim, copied beside this binary by engine/build.sh) in the virtualenv
//     named by Pulumi.yaml's runtime.options (sdk/v3/python/toolchain), with PULUMI_CONFIG
//     and PULUMI_CONFIG_SECRET_KEYS; exit code 32 (the SDK's "error already reported")
//     bails without a second message, any other non-zero code is
//     "Program exited with non-zero exit code: N".
//   - GetRequiredPackages reports, like upstream, one resource plugin for every installed
//     `pulumi-*` distribution whose pulumi-plugin.json says `"resource": true` (name and
//     version from that file, else derived from the distribution), whether or not the
//     program uses it.
//
// Everything else (InstallDependencies, About, code generation, Pack, Link, ...) answers
// Unimplemented, which the engine tolerates for the commands the tests run.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// The SDK's exit code for "the program already reported a user-actionable error".
const exitCodeBail = 32

// listPulumiPackages prints, as JSON, every installed pulumi-* distribution with the
// contents of its pulumi-plugin.json (if any).
const listPulumiPackages = `
import importlib.metadata as md, json, os
out = []
for dist in md.distributions():
    name = (dist.metadata["Name"] or "").lower().replace("_", "-")
    if not name.startswith("pulumi-") or name == "pulumi-policy":
        continue
    mod = name.replace("-", "_")
    plugin = None
    for f in dist.files or []:
        if str(f).replace("\\", "/") == mod + "/pulumi-plugin.json":
            with open(dist.locate_file(f)) as fh:
                plugin = json.load(fh)
    out.append({"name": name, "version": dist.version, "plugin": plugin})
print(json.dumps(out))
`

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	exec          string
	engineAddress string
}

func main() {
	// The engine passes its address as the last positional argument; older engines also
	// passed -flag=value options, which this host does not need.
	var engineAddress string
	for _, a := range os.Args[1:] {
		if !strings.HasPrefix(a, "-") {
			engineAddress = a
		}
	}
	logging.InitLogging(false, 0, false)

	self, err := os.Executable()
	if err != nil {
		cmdutil.Exit(fmt.Errorf("could not determine current executable: %w", err))
	}
	execScript := filepath.Join(filepath.Dir(self), "pulumi-language-python-exec")
	if _, err := os.Stat(execScript); err != nil {
		cmdutil.Exit(fmt.Errorf("missing executor %s: %w", execScript, err))
	}

	// Like upstream's plugins, stop once the engine is gone (a CLI that exits early, e.g.
	// on a config validation error, does not always stop its language host).
	ctx, engineGone := context.WithCancel(context.Background())
	cancel := make(chan bool)
	if engineAddress != "" {
		if err := rpcutil.Healthcheck(ctx, engineAddress, 30*time.Second, engineGone); err != nil {
			cmdutil.Exit(fmt.Errorf("could not watch the engine: %w", err))
		}
		go func() {
			<-ctx.Done()
			close(cancel)
		}()
	}

	h := &host{exec: execScript, engineAddress: engineAddress}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, h)
			return nil
		},
		Cancel: cancel,
	})
	if err != nil {
		cmdutil.Exit(fmt.Errorf("could not start language host RPC server: %w", err))
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		cmdutil.Exit(fmt.Errorf("language host RPC stopped serving: %w", err))
	}
}

func optionString(opts *structpb.Struct, key string) string {
	if opts == nil {
		return ""
	}
	if v, ok := opts.Fields[key]; ok {
		return v.GetStringValue()
	}
	return ""
}

// toolchainFor resolves the Python toolchain of a program from its runtime options.
func toolchainFor(info *pulumirpc.ProgramInfo) (toolchain.Toolchain, error) {
	if info == nil {
		return nil, errors.New("the engine sent no program info")
	}
	opts := toolchain.PythonOptions{
		Root:       info.RootDirectory,
		ProgramDir: info.ProgramDirectory,
		Virtualenv: optionString(info.Options, "virtualenv"),
		Toolchain:  toolchain.Pip,
	}
	switch optionString(info.Options, "toolchain") {
	case "uv":
		opts.Toolchain = toolchain.Uv
	case "poetry":
		opts.Toolchain = toolchain.Poetry
	case "pip", "":
		if opts.Virtualenv == "" {
			opts.Toolchain = toolchain.Auto
		}
	}
	return toolchain.ResolveToolchain(opts)
}

func (h *host) Handshake(
	ctx context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	if req.GetEngineAddress() != "" {
		h.engineAddress = req.GetEngineAddress()
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) GetPluginInfo(ctx context.Context, _ *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

type pulumiPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Plugin  *struct {
		Resource bool   `json:"resource"`
		Name     string `json:"name"`
		Version  string `json:"version"`
		Server   string `json:"server"`
	} `json:"plugin"`
}

func (h *host) GetRequiredPackages(
	ctx context.Context, req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	tc, err := toolchainFor(req.GetInfo())
	if err != nil {
		return nil, err
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return nil, err
	}
	cmd, err := tc.Command(ctx, "-c", listPulumiPackages)
	if err != nil {
		return nil, err
	}
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("listing the installed pulumi packages: %w", err)
	}
	var pkgs []pulumiPackage
	if err := json.Unmarshal(out, &pkgs); err != nil {
		return nil, fmt.Errorf("parsing the installed pulumi packages: %w", err)
	}
	resp := &pulumirpc.GetRequiredPackagesResponse{}
	for _, p := range pkgs {
		name, ver, server := strings.TrimPrefix(p.Name, "pulumi-"), p.Version, ""
		if p.Plugin != nil {
			if !p.Plugin.Resource {
				continue
			}
			if p.Plugin.Name != "" {
				name = p.Plugin.Name
			}
			if p.Plugin.Version != "" {
				ver = p.Plugin.Version
			}
			server = p.Plugin.Server
		}
		if !strings.HasPrefix(ver, "v") {
			ver = "v" + ver
		}
		resp.Packages = append(resp.Packages, &pulumirpc.PackageDependency{
			Name: name, Kind: "resource", Version: ver, Server: server,
		})
	}
	return resp, nil
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	tc, err := toolchainFor(req.GetInfo())
	if err != nil {
		return nil, err
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	args := []string{h.exec}
	add := func(k, v string) {
		if v != "" {
			args = append(args, "--"+k, v)
		}
	}
	add("monitor", req.GetMonitorAddress())
	add("engine", h.engineAddress)
	add("project", req.GetProject())
	add("stack", req.GetStack())
	add("pwd", req.GetPwd())
	add("dry_run", strconv.FormatBool(req.GetDryRun()))
	add("parallel", strconv.Itoa(int(req.GetParallel())))
	add("organization", req.GetOrganization())
	if info := req.GetInfo(); info != nil {
		add("root_directory", info.RootDirectory)
	}
	program := req.GetProgram()
	if program == "" {
		program = "."
	}
	args = append(args, program)
	args = append(args, req.GetArgs()...)

	cmd, err := tc.Command(ctx, args...)
	if err != nil {
		return nil, err
	}
	configMap, secretKeyList := req.GetConfig(), req.GetConfigSecretKeys()
	if configMap == nil {
		configMap = map[string]string{}
	}
	if secretKeyList == nil {
		secretKeyList = []string{}
	}
	config, err := json.Marshal(configMap)
	if err != nil {
		return nil, fmt.Errorf("serializing the configuration: %w", err)
	}
	secretKeys, err := json.Marshal(secretKeyList)
	if err != nil {
		return nil, fmt.Errorf("serializing the secret configuration keys: %w", err)
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env,
		"PULUMI_CONFIG="+string(config),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secretKeys),
	)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			if exitErr.ExitCode() == exitCodeBail {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{
				Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exitErr.ExitCode()),
			}, nil
		}
		return &pulumirpc.RunResponse{
			Error: fmt.Sprintf("Problem executing program (could not run language executor): %v", err),
		}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

func (h *host) Cancel(ctx context.Context, _ *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}
