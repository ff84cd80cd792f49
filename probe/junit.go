package probe

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure"`
	Error     *junitProblem `xml:"error"`
	Skipped   *junitProblem `xml:"skipped"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the report as JUnit XML, one test case per check, for CI systems.
func (r *Report) WriteJUnit(w io.Writer) error {
	suite := junitSuite{
		Name: "lapse probe " + r.Target, Tests: len(r.Checks),
		Failures: r.Count(Fail), Errors: r.Count(Error), Skipped: r.Count(Skip),
		Time:      fmt.Sprintf("%.3f", r.Finished.Sub(r.Started).Seconds()),
		Timestamp: r.Started.UTC().Format("2006-01-02T15:04:05"),
	}
	for _, c := range r.Checks {
		tc := junitCase{Name: c.ID, Classname: "probe." + c.WSTG, Time: fmt.Sprintf("%.3f", c.Finished.Sub(c.Started).Seconds())}
		problem := &junitProblem{Message: c.Detail, Text: strings.Join(c.Evidence, "\n")}
		switch c.Status {
		case Fail:
			tc.Failure = problem
		case Error:
			tc.Error = problem
		case Skip:
			tc.Skipped = &junitProblem{Message: c.Detail}
		default:
			tc.SystemOut = c.Detail + "\n" + strings.Join(c.Evidence, "\n")
		}
		suite.Cases = append(suite.Cases, tc)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{suite}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
