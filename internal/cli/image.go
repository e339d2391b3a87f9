package cli

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"atoll.dev/atoll/internal/runtime/image"
)

func newImageCmd(g *globals) *cobra.Command {
	rf := &runtimeFlags{}
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage the images pods run: import, fetch, trust, list, remove",
	}
	rf.bind(cmd)
	cmd.AddCommand(
		newImageImportCmd(g, rf), newImageFetchCmd(g, rf), newImageListCmd(g, rf),
		newImageInspectCmd(g, rf), newImageRmCmd(g, rf), newImageTagCmd(g, rf),
		newImageExportCmd(g, rf), newImageGCCmd(g, rf), newImageTrustCmd(g, rf),
	)
	return cmd
}

// verifyFlags are the signature flags of import and fetch.
type verifyFlags struct {
	signature string
	insecure  []string
	name      string
}

func (v *verifyFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&v.signature, "signature", "", "detached OpenPGP signature (default: PATH.asc for an archive)")
	cmd.Flags().StringSliceVar(&v.insecure, "insecure-options", nil, "image: skip the signature check; http: plain-HTTP registry")
	cmd.Flags().StringVar(&v.name, "name", "", "name to give the image, such as example.com/web:1.0")
}

func (v *verifyFlags) options(rf *runtimeFlags, g *globals) (image.ImportOptions, bool, error) {
	o := image.ImportOptions{Name: v.name, Signature: v.signature}
	insecureImage, http := false, false
	for _, opt := range v.insecure {
		switch opt {
		case "image":
			insecureImage = true
		case "http":
			http = true
		case "all", "all-fetch":
			insecureImage, http = true, true
		case "none", "":
		default:
			return o, false, usagef("--insecure-options=%s: want image, http, all-fetch or none", opt)
		}
	}
	if !insecureImage {
		rt, err := rf.open(g)
		if err != nil {
			return o, false, err
		}
		o.Verify = rt.Trust
	}
	return o, http, nil
}

func newImageImportCmd(g *globals, rf *runtimeFlags) *cobra.Command {
	vf := &verifyFlags{}
	cmd := &cobra.Command{
		Use:   "import PATH",
		Short: "Import an OCI image layout directory or a docker-archive tar (docker save)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := rf.open(g)
			if err != nil {
				return err
			}
			o, _, err := vf.options(rf, g)
			if err != nil {
				return err
			}
			img, err := rt.Images.Import(cmd.Context(), args[0], o)
			if err != nil {
				return podError(err)
			}
			fmt.Fprintln(g.stdout, img.ID)
			return nil
		},
	}
	vf.bind(cmd)
	return cmd
}

func newImageFetchCmd(g *globals, rf *runtimeFlags) *cobra.Command {
	vf := &verifyFlags{}
	var platform string
	cmd := &cobra.Command{
		Use:   "fetch REF",
		Short: "Fetch an image: docker://REGISTRY/NAME:TAG, REGISTRY/NAME:TAG, oci:DIR[:TAG], docker-archive:PATH",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := rf.open(g)
			if err != nil {
				return err
			}
			o, http, err := vf.options(rf, g)
			if err != nil {
				return err
			}
			img, err := rt.Images.Fetch(cmd.Context(), args[0], image.FetchOptions{ImportOptions: o, Platform: platform, Insecure: http})
			if err != nil {
				return podError(err)
			}
			fmt.Fprintln(g.stdout, img.ID)
			return nil
		},
	}
	vf.bind(cmd)
	cmd.Flags().StringVar(&platform, "platform", "", "os/arch[/variant] to pick from a multi-arch image (default this machine's)")
	return cmd
}

func newImageListCmd(g *globals, rf *runtimeFlags) *cobra.Command {
	var lf listFlags
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List images: ID, NAME, SIZE, IMPORTED",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(lf.output); err != nil {
				return err
			}
			rt, err := rf.open(g)
			if err != nil {
				return err
			}
			imgs, err := rt.Images.List()
			if err != nil {
				return err
			}
			if lf.output == "json" {
				return printJSON(g.stdout, imgs)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			if !lf.noLegend {
				fmt.Fprintln(tw, "ID\tNAME\tSIZE\tIMPORTED")
			}
			for _, img := range imgs {
				id := img.ID
				if !lf.full {
					id = shortID(id)
				}
				names := img.Names
				if len(names) == 0 {
					names = []string{"<none>"}
				}
				for _, n := range names {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\n", id, n, humanSize(img.Size), humanAgo(time.Since(img.Imported)))
				}
			}
			return tw.Flush()
		},
	}
	lf.bind(cmd, "full image IDs")
	return cmd
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return "sha256:" + id
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

func newImageInspectCmd(g *globals, rf *runtimeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect IMAGE",
		Short: "Print an image's names, config and layers as JSON",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := rf.open(g)
			if err != nil {
				return err
			}
			img, err := rt.Images.Get(args[0])
			if err != nil {
				return err
			}
			return printJSON(g.stdout, img)
		},
	}
}

func newImageRmCmd(g *globals, rf *runtimeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rm IMAGE...",
		Short: "Remove image names; an image given by ID, or left with no name, goes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := rf.open(g)
			if err != nil {
				return err
			}
			return forEachRef(g.stdout, args, rt.RemoveImage, "removed %s")
		},
	}
}

func newImageTagCmd(g *globals, rf *runtimeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "tag IMAGE NAME",
		Short: "Give an image another name",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := rf.open(g)
			if err != nil {
				return err
			}
			return rt.Images.Tag(args[0], args[1])
		},
	}
}

func newImageExportCmd(g *globals, rf *runtimeFlags) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "export IMAGE DEST",
		Short: "Write an image as a docker-archive tar or an OCI layout directory",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "docker-archive" && format != "oci" {
				return usagef("--format=%s: want docker-archive or oci", format)
			}
			rt, err := rf.open(g)
			if err != nil {
				return err
			}
			return rt.Images.Export(cmd.Context(), args[0], args[1], format)
		},
	}
	cmd.Flags().StringVar(&format, "format", "docker-archive", "docker-archive or oci")
	return cmd
}

func newImageGCCmd(g *globals, rf *runtimeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "gc",
		Short: "Remove blobs and unpacked layers no image or pod uses, and leftovers of killed imports",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			rt, err := rf.open(g)
			if err != nil {
				return err
			}
			st, err := rt.GCImages(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "removed %d blobs (%s), %d unpacked layers, %d leftovers\n", st.Blobs, humanSize(st.BlobBytes), st.Dirs, st.Temp)
			return nil
		},
	}
}

func newImageTrustCmd(g *globals, rf *runtimeFlags) *cobra.Command {
	var prefix string
	var root, list bool
	cmd := &cobra.Command{
		Use:   "trust [--prefix PREFIX | --root] KEYFILE",
		Short: "Trust an OpenPGP public key for images whose names start with PREFIX",
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := rf.open(g)
			if err != nil {
				return err
			}
			if list {
				keys, err := rt.Trust.List()
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "PREFIX\tFINGERPRINT\tIDENTITIES")
				for _, k := range keys {
					p := k.Prefix
					if p == "" {
						p = "(all images)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", p, k.Fingerprint, strings.Join(k.Identities, "; "))
				}
				return tw.Flush()
			}
			if len(args) != 1 {
				return usagef("atoll image trust takes one KEYFILE")
			}
			if (prefix == "") == !root {
				return usagef("give --prefix PREFIX, or --root to trust the key for every image")
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			k, err := rt.Trust.Trust(prefix, f)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "trusted key %s (%s) for %s: %s\n", k.Fingerprint, strings.Join(k.Identities, "; "), orAll(k.Prefix), k.Path)
			return nil
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "image-name prefix the key signs, such as example.com/app")
	cmd.Flags().BoolVar(&root, "root", false, "trust the key for every image")
	cmd.Flags().BoolVar(&list, "list", false, "list the trusted keys")
	return cmd
}

func orAll(prefix string) string {
	if prefix == "" {
		return "every image"
	}
	return prefix
}
