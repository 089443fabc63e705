// H.264 bitstream helpers for the storage peer: NAL units of an Annex-B
// access unit, the sequence parameter set's profile and picture size, and
// the avcC record Matroska wants.

package emulator

import (
	"errors"
	"fmt"
)

// maxStorageDimension is KVS's largest accepted picture width and height.
const maxStorageDimension = 1920

const (
	nalIDR = 5
	nalSPS = 7
	nalPPS = 8
	nalAUD = 9
)

// splitAnnexB returns the NAL units of an Annex-B byte stream, without
// their start codes. The units share b's memory.
func splitAnnexB(b []byte) [][]byte {
	var nals [][]byte
	start := -1
	for i := 0; i+2 < len(b); {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				nals = appendNAL(nals, b[start:i])
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 {
		nals = appendNAL(nals, b[start:])
	} else if len(b) > 0 {
		nals = appendNAL(nals, b)
	}
	return nals
}

// appendNAL appends n without the zero bytes that belong to the next start
// code (a four-byte start code leaves one behind).
func appendNAL(nals [][]byte, n []byte) [][]byte {
	for len(n) > 0 && n[len(n)-1] == 0 {
		n = n[:len(n)-1]
	}
	if len(n) == 0 {
		return nals
	}
	return append(nals, n)
}

// spsInfo is what the storage peer checks in a sequence parameter set.
type spsInfo struct {
	profile       string // e.g. constrained-baseline; empty if not one KVS takes
	profileIDC    byte
	width, height int
}

// bitReader reads an RBSP (emulation prevention bytes removed) bit by bit.
type bitReader struct {
	b   []byte
	pos int // in bits
}

var errSPSShort = errors.New("ends too early")

func (r *bitReader) bit() (uint, error) {
	if r.pos >= len(r.b)*8 {
		return 0, errSPSShort
	}
	v := uint(r.b[r.pos/8]>>(7-r.pos%8)) & 1
	r.pos++
	return v, nil
}

func (r *bitReader) bits(n int) (uint, error) {
	var v uint
	for range n {
		b, err := r.bit()
		if err != nil {
			return 0, err
		}
		v = v<<1 | b
	}
	return v, nil
}

// ue reads an unsigned Exp-Golomb code of at most 32 bits.
func (r *bitReader) ue() (uint, error) {
	zeros := 0
	for {
		b, err := r.bit()
		if err != nil {
			return 0, err
		}
		if b == 1 {
			break
		}
		zeros++
		if zeros > 31 {
			return 0, errors.New("has an Exp-Golomb code over 32 bits")
		}
	}
	v, err := r.bits(zeros)
	return (1<<zeros - 1) + v, err
}

func (r *bitReader) se() error {
	_, err := r.ue()
	return err
}

// unescapeRBSP removes emulation prevention bytes (00 00 03).
func unescapeRBSP(b []byte) []byte {
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}

// h264ProfileName names the profiles KVS ingests; others get "".
func h264ProfileName(idc, constraints byte) string {
	switch {
	case idc == 66 && constraints&0x40 != 0:
		return "constrained-baseline"
	case idc == 66:
		return "baseline"
	case idc == 77:
		return "main"
	case idc == 100 && constraints&0x0c == 0x0c:
		return "constrained-high"
	case idc == 100 && constraints&0x08 != 0:
		return "progressive-high"
	case idc == 100:
		return "high"
	}
	return ""
}

// parseSPS reads a sequence parameter set NAL unit (header byte included)
// up to the picture size.
func parseSPS(nal []byte) (spsInfo, error) {
	if len(nal) < 4 || nal[0]&0x1f != nalSPS {
		return spsInfo{}, errors.New("emulator: h264 SPS: not a sequence parameter set NAL unit")
	}
	info := spsInfo{profileIDC: nal[1]}
	info.profile = h264ProfileName(nal[1], nal[2])
	r := &bitReader{b: unescapeRBSP(nal[4:])}
	if err := info.readSize(r); err != nil {
		return spsInfo{}, fmt.Errorf("emulator: h264 SPS: %w", err)
	}
	return info, nil
}

// readSize reads the SPS fields from seq_parameter_set_id to the cropping
// rectangle (ITU-T H.264 section 7.3.2.1.1).
func (info *spsInfo) readSize(r *bitReader) error {
	if _, err := r.ue(); err != nil { // seq_parameter_set_id
		return err
	}
	chroma := uint(1)
	switch info.profileIDC {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		if err := readHighProfileFields(r, &chroma); err != nil {
			return err
		}
	}
	if _, err := r.ue(); err != nil { // log2_max_frame_num_minus4
		return err
	}
	pocType, err := r.ue()
	if err != nil {
		return err
	}
	if err := skipPOC(r, pocType); err != nil {
		return err
	}
	if _, err := r.ue(); err != nil { // max_num_ref_frames
		return err
	}
	if _, err := r.bit(); err != nil { // gaps_in_frame_num_value_allowed_flag
		return err
	}
	wMBs, err := r.ue()
	if err != nil {
		return err
	}
	hMaps, err := r.ue()
	if err != nil {
		return err
	}
	frameMBsOnly, err := r.bit()
	if err != nil {
		return err
	}
	skip := 1 // direct_8x8_inference_flag
	if frameMBsOnly == 0 {
		skip++ // mb_adaptive_frame_field_flag
	}
	if _, err := r.bits(skip); err != nil {
		return err
	}
	var crop [4]uint
	if cropping, err := r.bit(); err != nil {
		return err
	} else if cropping == 1 {
		for i := range crop {
			if crop[i], err = r.ue(); err != nil {
				return err
			}
		}
	}
	unitX, unitY := uint(1), 2-frameMBsOnly
	if chroma == 1 || chroma == 2 {
		unitX = 2
	}
	if chroma == 1 {
		unitY *= 2
	}
	w := int(wMBs+1)*16 - int(unitX*(crop[0]+crop[1]))
	h := int((2-frameMBsOnly)*(hMaps+1)*16) - int(unitY*(crop[2]+crop[3]))
	if w <= 0 || h <= 0 || w > 1<<16 || h > 1<<16 {
		return fmt.Errorf("picture size %dx%d is not possible", w, h)
	}
	info.width, info.height = w, h
	return nil
}

// readHighProfileFields reads the chroma format, bit depths and scaling
// matrices the high profiles carry.
func readHighProfileFields(r *bitReader, chroma *uint) error {
	var err error
	if *chroma, err = r.ue(); err != nil {
		return err
	}
	if *chroma > 3 {
		return fmt.Errorf("chroma_format_idc %d: must be 0 to 3", *chroma)
	}
	if *chroma == 3 {
		if _, err := r.bit(); err != nil { // separate_colour_plane_flag
			return err
		}
	}
	for range 2 { // bit_depth_luma_minus8, bit_depth_chroma_minus8
		if _, err := r.ue(); err != nil {
			return err
		}
	}
	if _, err := r.bit(); err != nil { // qpprime_y_zero_transform_bypass_flag
		return err
	}
	present, err := r.bit()
	if err != nil || present == 0 {
		return err
	}
	lists := 8
	if *chroma == 3 {
		lists = 12
	}
	for i := range lists {
		if has, err := r.bit(); err != nil {
			return err
		} else if has == 1 {
			size := 16
			if i >= 6 {
				size = 64
			}
			if err := skipScalingList(r, size); err != nil {
				return err
			}
		}
	}
	return nil
}

func skipScalingList(r *bitReader, size int) error {
	last, next := 8, 8
	for range size {
		if next != 0 {
			v, err := r.ue()
			if err != nil {
				return err
			}
			// se(v) from ue(v): 1, -1, 2, -2, …
			delta := int(v+1) / 2
			if v%2 == 0 {
				delta = -delta
			}
			next = (last + delta + 256) % 256
		}
		if next != 0 {
			last = next
		}
	}
	return nil
}

func skipPOC(r *bitReader, pocType uint) error {
	switch pocType {
	case 0:
		_, err := r.ue() // log2_max_pic_order_cnt_lsb_minus4
		return err
	case 1:
		if _, err := r.bit(); err != nil { // delta_pic_order_always_zero_flag
			return err
		}
		for range 2 { // offset_for_non_ref_pic, offset_for_top_to_bottom_field
			if err := r.se(); err != nil {
				return err
			}
		}
		n, err := r.ue()
		if err != nil {
			return err
		}
		if n > 255 {
			return fmt.Errorf("num_ref_frames_in_pic_order_cnt_cycle %d: must be at most 255", n)
		}
		for range n {
			if err := r.se(); err != nil {
				return err
			}
		}
		return nil
	case 2:
		return nil
	}
	return fmt.Errorf("pic_order_cnt_type %d: must be 0, 1 or 2", pocType)
}

// avcConfig returns the AVCDecoderConfigurationRecord (ISO/IEC 14496-15)
// of one SPS and one PPS, with 4-byte NAL lengths, as Matroska's
// V_MPEG4/ISO/AVC CodecPrivate.
func avcConfig(sps, pps []byte) []byte {
	b := []byte{1, sps[1], sps[2], sps[3], 0xff, 0xe1, byte(len(sps) >> 8), byte(len(sps))}
	b = append(b, sps...)
	b = append(b, 1, byte(len(pps)>>8), byte(len(pps)))
	return append(b, pps...)
}

// toAVCC rewrites NAL units with 4-byte length prefixes, as Matroska
// stores H.264, leaving out access unit delimiters.
func toAVCC(nals [][]byte) []byte {
	n := 0
	for _, u := range nals {
		n += 4 + len(u)
	}
	out := make([]byte, 0, n)
	for _, u := range nals {
		if u[0]&0x1f == nalAUD {
			continue
		}
		out = append(out, byte(len(u)>>24), byte(len(u)>>16), byte(len(u)>>8), byte(len(u)))
		out = append(out, u...)
	}
	return out
}
