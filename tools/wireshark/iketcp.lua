-- iketcp.lua: Wireshark dissector for RFC 9329 streams (IKE and ESP over TCP).
--
-- A stream is the 6-byte prefix "IKETCP" (only at the start of the
-- originator's direction, RFC 9329 section 3.1) followed, in both
-- directions, by frames: a 2-byte big-endian Length that counts itself, then
-- Length - 2 bytes of body. A body is an IKE message behind the 4-byte
-- non-ESP marker (handed to Wireshark's "isakmp" dissector), an ESP packet
-- (non-zero SPI, handed to "esp"), a keepalive (the single byte 0xFF) or
-- empty. Length 0 and 1 cannot be framed: the rest of the stream is flagged
-- as malformed, as a receiver would close the connection there.
--
-- Where it runs (tools/wireshark/README.md has the details):
--   * tcp.port, preference iketcp.tcp_port (default 4500); re-added in
--     init() so that a built-in dissector registered on the same port by its
--     own preference (tcpencap, Cisco's format) never takes it over;
--   * heuristically on TCP: "IKETCP" at the start of a connection;
--   * over TLS (RFC 9329 section 8): heuristically on the decrypted
--     application data (the prefix again), in "Decode As" for tls.port, and
--     on the port of the preference iketcp.tls_port (0 = none).
--
-- Needs Wireshark >= 3.6 (Lua 5.2 API; tested with 4.0).

local iketcp = Proto("iketcp", "IKE and ESP over TCP (RFC 9329)")

local PREFIX = "IKETCP"
local PREFIX_LEN = #PREFIX
local LENGTH_LEN = 2
local MARKER_LEN = 4

local KIND_IKE, KIND_ESP, KIND_KEEPALIVE, KIND_EMPTY, KIND_MALFORMED = 1, 2, 3, 4, 5
local kind_names = {
    [KIND_IKE] = "IKE",
    [KIND_ESP] = "ESP",
    [KIND_KEEPALIVE] = "Keepalive",
    [KIND_EMPTY] = "Empty",
    [KIND_MALFORMED] = "Malformed",
}

local f = {
    prefix = ProtoField.string("iketcp.prefix", "Stream prefix"),
    frame = ProtoField.bytes("iketcp.frame", "Frame", base.NONE),
    length = ProtoField.uint16("iketcp.length", "Length", base.DEC, nil, nil,
        "Frame length, counting the Length field itself"),
    kind = ProtoField.uint8("iketcp.kind", "Frame kind", base.DEC, kind_names),
    marker = ProtoField.uint32("iketcp.non_esp_marker", "Non-ESP marker", base.HEX),
    keepalive = ProtoField.uint8("iketcp.keepalive", "Keepalive", base.HEX),
    body = ProtoField.bytes("iketcp.body", "Body"),
}
iketcp.fields = { f.prefix, f.frame, f.length, f.kind, f.marker, f.keepalive, f.body }

local ex = {
    bad_length = ProtoExpert.new("iketcp.length.invalid", "Length below 2: the stream cannot be framed",
        expert.group.MALFORMED, expert.severity.ERROR),
    short_body = ProtoExpert.new("iketcp.body.short", "Body of 1 to 3 bytes that is not a keepalive",
        expert.group.MALFORMED, expert.severity.WARN),
    keepalive = ProtoExpert.new("iketcp.keepalive.frame", "Keepalive frame",
        expert.group.SEQUENCE, expert.severity.CHAT),
    empty = ProtoExpert.new("iketcp.empty.frame", "Empty frame (Length 2)",
        expert.group.SEQUENCE, expert.severity.NOTE),
    truncated = ProtoExpert.new("iketcp.truncated", "Frame continues beyond the data available",
        expert.group.MALFORMED, expert.severity.WARN),
    sub_failed = ProtoExpert.new("iketcp.body.malformed", "The body's dissector failed on it",
        expert.group.MALFORMED, expert.severity.WARN),
}
iketcp.experts = { ex.bad_length, ex.short_body, ex.keepalive, ex.empty, ex.truncated, ex.sub_failed }

iketcp.prefs.tcp_port = Pref.uint("TCP port", 4500, "TCP port of RFC 9329 streams (0: heuristics only)")
iketcp.prefs.tls_port = Pref.uint("TLS port", 0,
    "TCP port of RFC 9329 streams inside TLS (0: heuristics and Decode As only)")

local isakmp_handle = Dissector.get("isakmp")
local esp_handle = Dissector.get("esp")
local tcp_stream_f = Field.new("tcp.stream")
local tcp_seq_f = Field.new("tcp.seq")
local tls_ctype_f = Field.new("tls.record.content_type")

-- Per connection, built on the first (in-order) pass: which side is the
-- originator, which directions have had data, and whether the prefix was
-- split so that the next call in that direction still starts the stream.
-- Which calls started a stream is kept per frame for later passes (the GUI
-- dissects again in any order).
local conns, starts

-- The ports follow the preferences: the old one is dropped, the current one
-- (re)added, also when unchanged (see the header: tcpencap).
local registered = { ["tcp.port"] = 0, ["tls.port"] = 0 }
local function register_ports()
    for table_name, port in pairs({ ["tcp.port"] = iketcp.prefs.tcp_port,
        ["tls.port"] = iketcp.prefs.tls_port }) do
        local t = DissectorTable.get(table_name)
        if registered[table_name] ~= 0 and registered[table_name] ~= port then
            t:remove(registered[table_name], iketcp)
        end
        if port ~= 0 then
            t:add(port, iketcp)
        end
        registered[table_name] = port
    end
end

function iketcp.init()
    conns, starts = {}, {}
    register_ports()
end

iketcp.prefs_changed = register_ports

local function conn_key(pinfo, layer)
    local s = tcp_stream_f()
    return layer .. ":" .. (s and tostring(s.value) or (tostring(pinfo.src) .. "/" .. tostring(pinfo.dst)))
end

local function side_key(pinfo)
    return tostring(pinfo.src) .. ":" .. tostring(pinfo.src_port)
end

-- Is this call the start of the originator's direction? origin_hint: true
-- when the caller knows this sender is the originator (a heuristic saw the
-- prefix). Decided on the first pass and remembered per frame and tvb
-- length, the two things that tell apart the calls one frame can get.
local function at_originator_start(tvb, pinfo, layer, origin_hint)
    local call = tostring(pinfo.number) .. ":" .. tostring(tvb:reported_len()) .. ":" .. layer
    if pinfo.visited then
        return starts[call] == true
    end
    local key = conn_key(pinfo, layer)
    local c = conns[key]
    if not c then
        c = { seen = {} }
        conns[key] = c
    end
    local me = side_key(pinfo)
    if not c.origin then
        local m = pinfo.match_uint
        if origin_hint then
            c.origin = me
        elseif m ~= 0 and pinfo.dst_port == m and pinfo.src_port ~= m then
            c.origin = me
        elseif m ~= 0 and pinfo.src_port == m and pinfo.dst_port ~= m then
            c.origin = tostring(pinfo.dst) .. ":" .. tostring(pinfo.dst_port)
        else
            c.origin = me -- the first to send is the one that connected
        end
    end
    local start = false
    if me == c.origin then
        if c.prefix_pending then
            start = true
            c.prefix_pending = false
        elseif not c.seen[me] then
            -- Over TCP, a capture that begins mid-connection has no start.
            local seq = layer == "tcp" and tcp_seq_f() or nil
            start = seq == nil or seq.value == 1
        end
    end
    c.seen[me] = true
    starts[call] = start
    return start, c
end

-- A body that the next dissector finds malformed must not stop the frames
-- after it in the same segment: its exception is caught and shown here.
local function hand_over(handle, tvb, pinfo, root, ft)
    local ok, err = pcall(Dissector.call, handle, tvb, pinfo, root)
    if not ok then
        ft:add_proto_expert_info(ex.sub_failed, tostring(err))
    end
end

local function add_frame(tvb, pinfo, tree, root)
    local flen = tvb:len()
    local ft = tree:add(f.frame, tvb())
    ft:add(f.length, tvb(0, LENGTH_LEN))
    local body_len = flen - LENGTH_LEN
    local kind
    if body_len == 0 then
        kind = KIND_EMPTY
        ft:add_proto_expert_info(ex.empty)
    elseif body_len == 1 and tvb(LENGTH_LEN, 1):uint() == 0xff then
        kind = KIND_KEEPALIVE
        ft:add(f.keepalive, tvb(LENGTH_LEN, 1))
        ft:add_proto_expert_info(ex.keepalive)
    elseif body_len < MARKER_LEN then
        kind = KIND_MALFORMED
        ft:add(f.body, tvb(LENGTH_LEN))
        ft:add_proto_expert_info(ex.short_body)
    elseif tvb(LENGTH_LEN, MARKER_LEN):uint() == 0 then
        kind = KIND_IKE
    else
        kind = KIND_ESP
    end
    ft:add(f.kind, kind):set_generated()
    ft:set_text(string.format("Frame: %s, Length %d", kind_names[kind], flen))
    if kind == KIND_IKE then
        ft:add(f.marker, tvb(LENGTH_LEN, MARKER_LEN))
        hand_over(isakmp_handle, tvb(LENGTH_LEN + MARKER_LEN):tvb(), pinfo, root, ft)
    elseif kind == KIND_ESP then
        hand_over(esp_handle, tvb(LENGTH_LEN):tvb(), pinfo, root, ft)
    else
        pinfo.cols.info:append(" [" .. kind_names[kind] .. "]")
    end
    -- The next frame's dissector must not overwrite what this one wrote.
    pinfo.cols.info:append(" ")
    pinfo.cols.info:fence()
    return kind
end

-- The stream dissector proper: prefix, then as many whole frames as the tvb
-- holds; a frame cut at the end asks TCP (or TLS) for the missing bytes.
local function dissect(tvb, pinfo, root, layer, origin_hint)
    local len = tvb:len()
    if len == 0 then
        return 0
    end
    pinfo.cols.protocol = "IKETCP"
    pinfo.cols.info:clear_fence()
    pinfo.cols.info:clear()
    local offset = 0
    local prefix_len = 0
    if at_originator_start(tvb, pinfo, layer, origin_hint) then
        local n = math.min(len, PREFIX_LEN)
        if tvb(0, n):string() == PREFIX:sub(1, n) then
            if n < PREFIX_LEN and pinfo.can_desegment > 0 then
                if not pinfo.visited then
                    conns[conn_key(pinfo, layer)].prefix_pending = true
                end
                pinfo.desegment_offset = 0
                pinfo.desegment_len = PREFIX_LEN - n
                return len
            end
            prefix_len = n
        end
    end
    -- (no tree for a segment that only waits for the rest of the prefix:
    -- the next pass would not show one either)
    local tree = root:add(iketcp, tvb())
    if prefix_len > 0 then
        tree:add(f.prefix, tvb(0, prefix_len))
        pinfo.cols.info:append("IKETCP prefix ")
        pinfo.cols.info:fence()
        offset = prefix_len
    end

    while offset < len do
        local remain = len - offset
        if remain < LENGTH_LEN then
            if pinfo.can_desegment > 0 then
                pinfo.desegment_offset = offset
                pinfo.desegment_len = LENGTH_LEN - remain
                break
            end
            tree:add(f.body, tvb(offset)):add_proto_expert_info(ex.truncated)
            offset = len
            break
        end
        local flen = tvb(offset, LENGTH_LEN):uint()
        if flen < LENGTH_LEN then
            local it = tree:add(f.length, tvb(offset, LENGTH_LEN))
            it:add_proto_expert_info(ex.bad_length,
                string.format("Length %d below 2: the rest of the stream cannot be framed", flen))
            tree:add(f.kind, KIND_MALFORMED):set_generated()
            pinfo.cols.info:append(string.format("[Malformed: Length %d] ", flen))
            offset = len
            break
        end
        if remain < flen then
            if pinfo.can_desegment > 0 then
                pinfo.desegment_offset = offset
                pinfo.desegment_len = flen - remain
                break
            end
            local it = tree:add(f.frame, tvb(offset))
            it:add(f.length, tvb(offset, LENGTH_LEN))
            it:add_proto_expert_info(ex.truncated)
            offset = len
            break
        end
        add_frame(tvb(offset, flen):tvb(), pinfo, tree, root)
        offset = offset + flen
    end
    tree:set_len(offset)
    return len
end

-- Called from tcp.port, tls.port, Decode As, or a conversation that the TCP
-- heuristic claimed. A TLS record in the frame's tree means the data is
-- TLS's decrypted application data, not the TCP segment.
function iketcp.dissector(tvb, pinfo, root)
    local layer = tls_ctype_f() and "tls" or "tcp"
    return dissect(tvb, pinfo, root, layer, false)
end

local function starts_with_prefix(tvb, need_all)
    local n = math.min(tvb:len(), PREFIX_LEN)
    if n == 0 or (need_all and n < PREFIX_LEN) then
        return false
    end
    return tvb(0, n):string() == PREFIX:sub(1, n)
end

-- TCP: the prefix at the start of a connection (sequence number 1); a split
-- prefix is accepted from 3 bytes on.
local function heur_tcp(tvb, pinfo, root)
    local seq = tcp_seq_f()
    if not seq or seq.value ~= 1 or tvb:len() < 3 or not starts_with_prefix(tvb, false) then
        return false
    end
    pinfo.conversation = iketcp
    dissect(tvb, pinfo, root, "tcp", true)
    return true
end

-- TLS: the prefix at the start of the decrypted application data, then
-- every later record of a connection claimed that way.
local function heur_tls(tvb, pinfo, root)
    local known = conns[conn_key(pinfo, "tls")] ~= nil
    if not known and not starts_with_prefix(tvb, true) then
        return false
    end
    dissect(tvb, pinfo, root, "tls", not known)
    return true
end

iketcp:register_heuristic("tcp", heur_tcp)
iketcp:register_heuristic("tls", heur_tls)
DissectorTable.get("tls.port"):add_for_decode_as(iketcp)
DissectorTable.get("tcp.port"):add_for_decode_as(iketcp)
