package module

import (
	"fmt"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "llm-gateway",
		Usage: "new-key [--name <key name>] | hash-key <key> | prices [--all] [--json] [--file <prices.json> | --builtin | --address <admin>] [model] | keys create|list|show|update|rotate|revoke|audit …",
		Short: "Manage llm_gateway virtual keys and show prices",
		Long: `Manage llm_gateway virtual keys and show the price table.

new-key prints a fresh random virtual key and the secret_sha256 line that
configures it, so the Caddyfile never holds a usable key. Give the key to
the developer (ANTHROPIC_AUTH_TOKEN) and the key block to the Caddyfile.

hash-key prints the secret_sha256 of an existing key.

prices prints the price table in force (USD per million tokens), or the
row that prices one model: from the running server's admin API (the
built-in table merged with its prices_file and price lines), or offline
from the built-in table merged with --file, which also validates that
file before a reload. --all adds superseded and future rows; --json prints
the prices-file format.

keys creates, lists, updates, rotates and revokes live keys through the
running server's admin API (see "caddy llm-gateway keys --help").`,
		CobraFunc: func(cmd *cobra.Command) {
			newKey := &cobra.Command{
				Use:   "new-key",
				Short: "Print a new virtual key and its secret_sha256",
				Args:  cobra.NoArgs,
				RunE: func(cmd *cobra.Command, _ []string) error {
					name, _ := cmd.Flags().GetString("name")
					secret, err := governance.NewSecret()
					if err != nil {
						return err
					}
					h := governance.HashSecret(secret)
					out := cmd.OutOrStdout()
					fmt.Fprintf(out, "key:           %s\n", secret)
					fmt.Fprintf(out, "secret_sha256: %s\n\n", h)
					fmt.Fprintf(out, "Caddyfile:\n\tkey %s {\n\t\tsecret_sha256 %s\n\t}\n", name, h)
					return nil
				},
			}
			newKey.Flags().String("name", "developer", "the key's name in the Caddyfile")
			hashKey := &cobra.Command{
				Use:   "hash-key <key>",
				Short: "Print the secret_sha256 of a key",
				Args:  cobra.ExactArgs(1),
				RunE: func(cmd *cobra.Command, args []string) error {
					fmt.Fprintln(cmd.OutOrStdout(), governance.HashSecret(args[0]))
					return nil
				},
			}
			cmd.AddCommand(newKey, hashKey, pricesCommand(), keysCommand())
		},
	})
}
