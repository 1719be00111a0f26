package flow

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
)

var colorPattern = regexp.MustCompile(`^#(?:[0-9a-fA-F]{3}){1,2}$`)

// Text colours on the brand colour. Whichever of black and white contrasts
// more with a colour reaches at least 4.58:1, so text on any brand colour
// meets WCAG's 4.5:1; a softer black would fall short on mid-tones.
const (
	inkDark  = "#000000"
	inkLight = "#ffffff"
)

// rgb is a colour with channels from 0 to 255.
type rgb [3]uint8

// parseColor reads #rgb or #rrggbb.
func parseColor(s string) (rgb, error) {
	if !colorPattern.MatchString(s) {
		return rgb{}, fmt.Errorf("colour %q must be #rgb or #rrggbb", s)
	}
	hex := s[1:]
	if len(hex) == 3 {
		hex = string([]byte{hex[0], hex[0], hex[1], hex[1], hex[2], hex[2]})
	}
	var c rgb
	for i := range c {
		v, err := strconv.ParseUint(hex[2*i:2*i+2], 16, 8)
		if err != nil {
			return rgb{}, fmt.Errorf("reading colour %q: %w", s, err)
		}
		c[i] = uint8(v)
	}
	return c, nil
}

// luminance is the relative luminance of c, as WCAG 2 defines it.
func (c rgb) luminance() float64 {
	var l [3]float64
	for i, v := range c {
		s := float64(v) / 255
		if s <= 0.04045 {
			l[i] = s / 12.92
		} else {
			l[i] = math.Pow((s+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*l[0] + 0.7152*l[1] + 0.0722*l[2]
}

// contrast is the WCAG 2 contrast ratio of two colours, from 1 to 21.
func contrast(a, b rgb) float64 {
	la, lb := a.luminance(), b.luminance()
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// ContrastRatio returns the WCAG 2 contrast ratio of two colours given as
// #rgb or #rrggbb. Text needs at least 4.5 to be readable by most people.
func ContrastRatio(a, b string) (float64, error) {
	ca, err := parseColor(a)
	if err != nil {
		return 0, err
	}
	cb, err := parseColor(b)
	if err != nil {
		return 0, err
	}
	return contrast(ca, cb), nil
}

// inkOn returns the text colour that reads best on background bg: white or
// black, whichever has the higher contrast.
func inkOn(bg rgb) string {
	dark, _ := parseColor(inkDark)
	light, _ := parseColor(inkLight)
	if contrast(bg, light) >= contrast(bg, dark) {
		return inkLight
	}
	return inkDark
}
