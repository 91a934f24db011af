package module

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmgateway/caddy-llm-gateway/governance"
)

// pricesCommand is `caddy llm-gateway prices [model]`.
func pricesCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "prices [model]",
		Short: "Print the price table in force, or the row that prices a model",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			model := ""
			if len(args) == 1 {
				model = args[0]
			}
			all, _ := cmd.Flags().GetBool("all")
			asJSON, _ := cmd.Flags().GetBool("json")
			file, _ := cmd.Flags().GetString("file")
			builtin, _ := cmd.Flags().GetBool("builtin")
			addr, _ := cmd.Flags().GetString("address")
			var list pricesJSON
			if file != "" || builtin {
				var rows []governance.PriceRow
				if file != "" {
					data, err := os.ReadFile(file)
					if err != nil {
						return err
					}
					if rows, err = governance.ParsePrices(file, data); err != nil {
						return err
					}
				}
				list = listPrices(governance.BuildPriceTable(rows, nil), model, time.Now(), all)
			} else {
				var err error
				if list, err = fetchPrices(addr, model, all); err != nil {
					return err
				}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			if model != "" && len(list.Rows) == 0 {
				return fmt.Errorf("%s is not priced", model)
			}
			return printPrices(cmd.OutOrStdout(), list, all)
		},
	}
	c.Flags().Bool("all", false, "list superseded and future rows too")
	c.Flags().Bool("json", false, "print JSON in the prices-file format")
	c.Flags().String("file", "", "merge this prices file over the built-in table instead of asking the server")
	c.Flags().Bool("builtin", false, "print the built-in table instead of asking the server")
	c.Flags().String("address", "localhost:2019", "the server's admin address")
	return c
}

// fetchPrices asks a running server's admin API for its table.
func fetchPrices(addr, model string, all bool) (pricesJSON, error) {
	var list pricesJSON
	q := url.Values{}
	if model != "" {
		q.Set("model", model)
	}
	if all {
		q.Set("all", "1")
	}
	u := "http://" + strings.TrimPrefix(addr, "http://") + "/llm_gateway/prices"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		return list, fmt.Errorf("asking the server for its prices (use --builtin or --file without one): %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return list, err
	}
	if resp.StatusCode != http.StatusOK {
		return list, fmt.Errorf("%s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	return list, json.Unmarshal(body, &list)
}

// printPrices prints one row a line: model, effective_from, the five
// rates, the fast input/output rates and the tiers.
func printPrices(w io.Writer, list pricesJSON, all bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "MODEL\tEFFECTIVE\tINPUT\tOUTPUT\tWRITE 5M\tWRITE 1H\tREAD\tFAST IN/OUT\tTIERS"
	if all {
		head += "\tIN FORCE"
	}
	fmt.Fprintln(tw, head)
	amt := func(a *governance.FileAmount) string {
		if a == nil {
			return "-"
		}
		return string(*a)
	}
	for _, r := range list.Rows {
		fast := "-"
		if r.Fast != nil {
			fast = amt(r.Fast.Input) + "/" + amt(r.Fast.Output)
		}
		tiers := "-"
		if len(r.Tiers) > 0 {
			var ts []string
			for _, t := range r.Tiers {
				ts = append(ts, fmt.Sprintf(">%d: %s/%s", t.Above, amt(t.Input), amt(t.Output)))
			}
			tiers = strings.Join(ts, ", ")
		}
		line := strings.Join([]string{r.Model, r.EffectiveFrom, amt(r.Input), amt(r.Output), amt(r.CacheWrite5m),
			amt(r.CacheWrite1h), amt(r.CacheRead), fast, tiers}, "\t")
		if all && r.InForce != nil {
			line += "\t" + map[bool]string{true: "yes", false: "no"}[*r.InForce]
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}
