package main

import (
	"encoding/json"
	"maps"
	"net"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// No Docker daemon runs the tests, so these read the Dockerfile, the example
// config, docker-compose.yml and the README's `docker run` the way Docker
// would, and check that they agree: the store lands on the image's volume,
// which exists and belongs to the user the image runs as, and the health check
// finds http.listen.

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, COPY, …
	args string
}

// stage is one FROM … of a Dockerfile.
type stage struct {
	from  string
	instr []instruction
}

func parseDockerfile(t *testing.T, text string) []stage {
	t.Helper()
	var stages []stage
	var line strings.Builder
	for raw := range strings.SplitSeq(text, "\n") {
		trimmed := strings.TrimSpace(raw)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && line.Len() == 0) {
			continue
		}
		if rest, ok := strings.CutSuffix(trimmed, `\`); ok {
			line.WriteString(rest + " ")
			continue
		}
		line.WriteString(trimmed)
		cmd, args, _ := strings.Cut(strings.TrimSpace(line.String()), " ")
		line.Reset()
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, stage{from: in.args})
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile: %s before FROM", in.cmd)
		}
		stages[len(stages)-1].instr = append(stages[len(stages)-1].instr, in)
	}
	return stages
}

// image is what the final stage makes of the container.
type image struct {
	workdir  string
	user     string
	env      map[string]string
	volumes  []string
	cmd      []string          // CMD, exec form
	health   []string          // HEALTHCHECK CMD, exec form
	dirs     map[string]string // folder in the image → owner uid:gid, from a COPY --chown of a built tree
	volumeAt int               // index of VOLUME among the final stage's instructions
	copiesAt []int             // indexes of the COPYs that make dirs
}

func execForm(t *testing.T, s string) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not an exec-form list: %s (%v)", s, err)
	}
	return v
}

func buildImage(t *testing.T, stages []stage) image {
	t.Helper()
	final := stages[len(stages)-1]
	if !strings.Contains(final.from, "distroless") || !strings.HasSuffix(final.from, ":nonroot") {
		t.Errorf("final image %q, want a distroless :nonroot image", final.from)
	}
	// Folders the build stages make (RUN mkdir -p …), by stage name.
	made := map[string][]string{}
	for _, s := range stages[:len(stages)-1] {
		name := s.from[strings.LastIndex(s.from, " ")+1:]
		for _, in := range s.instr {
			if in.cmd != "RUN" {
				continue
			}
			for _, m := range regexp.MustCompile(`mkdir -p ((?:/\S+ ?)+)`).FindAllStringSubmatch(in.args, -1) {
				made[name] = append(made[name], strings.Fields(m[1])...)
			}
		}
	}
	img := image{workdir: "/home/nonroot", user: "65532:65532", env: map[string]string{}, dirs: map[string]string{}, volumeAt: -1}
	for i, in := range final.instr {
		switch in.cmd {
		case "WORKDIR":
			img.workdir = path.Join(img.workdir, in.args) // absolute replaces
			if strings.HasPrefix(in.args, "/") {
				img.workdir = path.Clean(in.args)
			}
		case "USER":
			img.user = in.args
		case "ENV":
			for _, kv := range strings.Fields(in.args) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("ENV %s: use the KEY=value form", in.args)
				}
				img.env[k] = strings.Trim(v, `"`)
			}
		case "VOLUME":
			img.volumes = append(img.volumes, execForm(t, in.args)...)
			img.volumeAt = i
		case "CMD":
			img.cmd = execForm(t, in.args)
		case "HEALTHCHECK":
			_, cmd, ok := strings.Cut(in.args, " CMD ")
			if !ok {
				t.Fatalf("HEALTHCHECK %s: no CMD", in.args)
			}
			img.health = execForm(t, strings.TrimSpace(cmd))
		case "COPY":
			var from, chown string
			var rest []string
			for _, f := range strings.Fields(in.args) {
				switch {
				case strings.HasPrefix(f, "--from="):
					from = strings.TrimPrefix(f, "--from=")
				case strings.HasPrefix(f, "--chown="):
					chown = strings.TrimPrefix(f, "--chown=")
				default:
					rest = append(rest, f)
				}
			}
			if len(rest) != 2 || chown == "" {
				continue
			}
			src, dst := rest[0], rest[1]
			for _, d := range made[from] {
				if rel, ok := strings.CutPrefix(d, src); ok && (strings.HasSuffix(src, "/") || rel == "") {
					img.dirs[path.Join(dst, rel)] = chown
					img.copiesAt = append(img.copiesAt, i)
				}
			}
		}
	}
	return img
}

// uid turns a USER or --chown value into a numeric uid (distroless's nonroot
// is 65532).
func uid(user string) string {
	u, _, _ := strings.Cut(user, ":")
	if u == "nonroot" {
		return "65532"
	}
	return u
}

// configFlag returns the value of -config in args.
func configFlag(t *testing.T, args []string) string {
	t.Helper()
	i := slices.Index(args, "-config")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("%q has no -config", args)
	}
	return args[i+1]
}

// onVolume reports which volume holds the file p (relative paths from workdir).
func (img image) onVolume(p string) (string, bool) {
	if !path.IsAbs(p) {
		p = path.Join(img.workdir, p)
	}
	for _, v := range img.volumes {
		if strings.HasPrefix(p, strings.TrimSuffix(v, "/")+"/") {
			return v, true
		}
	}
	return p, false
}

// containerConfig parses the example config.yaml with the container's
// environment: the image's ENV, overridden by run's.
func containerConfig(t *testing.T, img image, run map[string]string) *Config {
	t.Helper()
	data, err := os.ReadFile("../../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vars := maps.Clone(img.env)
	maps.Copy(vars, run)
	cfg, err := parseConfig(data, env(vars))
	if err != nil {
		t.Fatalf("config.yaml in the container (env %v): %v", vars, err)
	}
	return cfg
}

// checkHealthListen checks that the health command can reach http.listen.
func checkHealthListen(t *testing.T, where string, cfg *Config) {
	t.Helper()
	if cfg.HTTP.Listen == "" {
		t.Errorf("%s: http.listen is empty, so the image's health check (chatbot health) always fails", where)
		return
	}
	if _, _, err := net.SplitHostPort(cfg.HTTP.Listen); err != nil {
		t.Errorf("%s: http.listen %q: %v", where, cfg.HTTP.Listen, err)
	}
}

func readImage(t *testing.T) image {
	t.Helper()
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	return buildImage(t, parseDockerfile(t, string(data)))
}

// TestDockerImageKeepsStoreOnItsVolume: with the example config (which reads
// store.path from STORE_PATH) and with a config that keeps the default
// data/chatbot.db, the store file is on a volume; that volume's folder is
// made by the image, owned by the image's user, before VOLUME (changes after
// it would be lost); CMD and HEALTHCHECK read the same config.
func TestDockerImageKeepsStoreOnItsVolume(t *testing.T) {
	img := readImage(t)
	if len(img.volumes) == 0 {
		t.Fatal("the image declares no VOLUME")
	}
	cfg := containerConfig(t, img, nil)
	if v, ok := img.onVolume(cfg.Store.Path); !ok {
		t.Errorf("with the example config the store is %s, on no volume (%q)", v, img.volumes)
	}
	def, err := parseConfig([]byte("openai:\n  api_key: k\n"), env(img.env))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := img.onVolume(def.Store.Path); !ok {
		t.Errorf("with the default store.path %q and WORKDIR %s the store is %s, on no volume (%q)",
			def.Store.Path, img.workdir, v, img.volumes)
	}
	for _, v := range img.volumes {
		owner, ok := img.dirs[v]
		switch {
		case !ok:
			t.Errorf("the image does not make %s (a COPY --chown of a folder made in the build stage), "+
				"so a new volume there belongs to root and the bot cannot write its store", v)
		case uid(owner) != uid(img.user):
			t.Errorf("%s belongs to %s, but the image runs as %s", v, owner, img.user)
		}
	}
	for _, at := range img.copiesAt {
		if at > img.volumeAt {
			t.Errorf("the volume's folder is made after VOLUME: Docker discards it")
		}
	}
	if uid(img.user) == "0" || img.user == "root" {
		t.Errorf("the image runs as %s, want a non-root user", img.user)
	}
	if got, want := configFlag(t, img.health), configFlag(t, img.cmd); got != want {
		t.Errorf("HEALTHCHECK reads %s, CMD %s", got, want)
	}
}

// TestDockerComposeMatchesImage: docker-compose.yml mounts a named volume on
// the image's volume, the config where CMD reads it, runs the image's command,
// and gives the config an http.listen for the health check, published on the
// host's loopback.
func TestDockerComposeMatchesImage(t *testing.T) {
	img := readImage(t)
	data, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Command     []string          `yaml:"command"`
			Volumes     []string          `yaml:"volumes"`
			Environment map[string]string `yaml:"environment"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatal(err)
	}
	svc, ok := compose.Services["chatbot"]
	if !ok {
		t.Fatal("docker-compose.yml has no chatbot service")
	}
	if !slices.Equal(svc.Command, img.cmd) {
		t.Errorf("compose command %q, image CMD %q", svc.Command, img.cmd)
	}
	mounts := map[string]string{} // target → source
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		mounts[parts[1]] = parts[0]
	}
	for _, v := range img.volumes {
		src, ok := mounts[v]
		if !ok {
			t.Errorf("compose mounts nothing on the image's volume %s", v)
		} else if _, named := compose.Volumes[src]; !named {
			t.Errorf("compose mounts %s on %s: want a named volume (it starts with the image's owner)", src, v)
		}
	}
	if _, ok := mounts[configFlag(t, img.cmd)]; !ok {
		t.Errorf("compose mounts no config at %s", configFlag(t, img.cmd))
	}
	// Compose's ${VAR:-} defaults stand for values from the user's environment.
	run := map[string]string{}
	for k, v := range svc.Environment {
		if !strings.HasPrefix(v, "${") {
			run[k] = v
		}
	}
	cfg := containerConfig(t, img, run)
	if v, ok := img.onVolume(cfg.Store.Path); !ok {
		t.Errorf("with compose's environment the store is %s, on no volume", v)
	}
	checkHealthListen(t, "docker-compose.yml", cfg)
	_, port, _ := net.SplitHostPort(cfg.HTTP.Listen)
	if !slices.ContainsFunc(svc.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+port) }) {
		t.Errorf("compose publishes %q, not the health and metrics port %s", svc.Ports, port)
	}
}

// dockerRuns returns the `docker run` commands in text's sh code blocks (or,
// with comments, in its # lines), continuation lines joined.
func dockerRuns(text string, comments bool) []string {
	var runs []string
	inBlock := comments
	var cur strings.Builder
	for raw := range strings.SplitSeq(text, "\n") {
		line := strings.TrimSpace(raw)
		if comments {
			rest, ok := strings.CutPrefix(line, "#")
			if !ok {
				continue
			}
			line = strings.TrimSpace(rest)
		} else if strings.HasPrefix(line, "```") {
			inBlock = line == "```sh"
			continue
		}
		if !inBlock {
			continue
		}
		if cur.Len() == 0 && !strings.HasPrefix(line, "docker run ") {
			continue
		}
		if rest, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(line)
		runs = append(runs, cur.String())
		cur.Reset()
	}
	return runs
}

// TestDockerRunExamplesWork: the README's `docker run` (and the one in the
// Dockerfile's header) mount a volume on the image's volume and the config
// where CMD reads it, run the image `docker build -t` made, and pass the
// http.listen address that the health check needs.
func TestDockerRunExamplesWork(t *testing.T) {
	img := readImage(t)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	dockerfile, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	tag := regexp.MustCompile("docker build -t (\\S+) \\.").FindStringSubmatch(string(readme))
	if tag == nil {
		t.Fatal("README has no `docker build -t NAME .`")
	}
	examples := map[string][]string{
		"README.md":  dockerRuns(string(readme), false),
		"Dockerfile": dockerRuns(string(dockerfile), true),
	}
	for where, runs := range examples {
		if len(runs) == 0 {
			t.Errorf("%s has no docker run example", where)
		}
		for _, run := range runs {
			words := strings.Fields(strings.ReplaceAll(run, `"`, ""))
			mounts := map[string]string{}
			vars := map[string]string{}
			var positional []string
			for i := 2; i < len(words); i++ {
				switch w := words[i]; w {
				case "-v", "-e", "--name":
					i++
					if w == "-v" {
						parts := strings.Split(words[i], ":")
						mounts[parts[1]] = parts[0]
					}
					if w == "-e" {
						if k, v, ok := strings.Cut(words[i], "="); ok {
							vars[k] = v
						}
					}
				case "-d", "--rm":
				default:
					positional = append(positional, w)
				}
			}
			if len(positional) == 0 || positional[0] != tag[1] {
				t.Errorf("%s: %q runs %q, not the image built as %s", where, run, positional, tag[1])
				continue
			}
			for _, v := range img.volumes {
				if _, ok := mounts[v]; !ok {
					t.Errorf("%s: %q mounts nothing on %s: the store would go with the container", where, run, v)
				}
			}
			if _, ok := mounts[configFlag(t, img.cmd)]; !ok {
				t.Errorf("%s: %q mounts no config at %s", where, run, configFlag(t, img.cmd))
			}
			if len(positional) > 1 {
				continue // a one-off command (store check), not the server
			}
			cfg := containerConfig(t, img, vars)
			if v, ok := img.onVolume(cfg.Store.Path); !ok {
				t.Errorf("%s: with %q the store is %s, on no volume", where, run, v)
			}
			checkHealthListen(t, where+": "+run, cfg)
		}
	}
}
