# evalboard's call channel for Ruby (see runtimes.py). Both sides are Ruby: the program's (it answers
# calls of its function) and the trusted checker's (the benchmark's tests, whose entry point is a
# proxy). One JSON array per line; values tagged: ["n"] nil, ["b", bool], ["i", "integer"],
# ["f", "float"], ["s", text], ["x", "hex bytes"] (not UTF-8), ["y", symbol], ["a", [...]],
# ["h", [[key, value], ...]].
require 'json'

module EvalboardCall
  SPECIAL = { 'nan' => Float::NAN, 'inf' => Float::INFINITY, '-inf' => -Float::INFINITY }.freeze

  def self.encode(v)
    case v
    when nil then ['n']
    when true, false then ['b', v]
    when Integer then ['i', v.to_s]
    when Float then ['f', v.nan? ? 'nan' : v.infinite? ? (v.positive? ? 'inf' : '-inf') : v.to_s]
    when String
      text = v.dup.force_encoding(Encoding::UTF_8)
      text.valid_encoding? ? ['s', text] : ['x', v.unpack1('H*')]
    when Symbol then ['y', v.to_s]
    when Array then ['a', v.map { |x| encode(x) }]
    when Hash then ['h', v.map { |k, x| [encode(k), encode(x)] }]
    else raise TypeError, "a #{v.class} is not plain data"
    end
  end

  def self.decode(m)
    raise TypeError, 'not a value' unless m.is_a?(Array) && m[0].is_a?(String)
    tag, body = m
    case tag
    when 'n' then return nil
    when 'b' then return body if body == true || body == false
    when 'i' then return Integer(body, 10) if body.is_a?(String)
    when 'f' then return SPECIAL.fetch(body) { Float(body) } if body.is_a?(String)
    when 's' then return body if body.is_a?(String)
    when 'x' then return [body].pack('H*') if body.is_a?(String) && body.match?(/\A(\h\h)*\z/)
    when 'y' then return body.to_sym if body.is_a?(String)
    when 'a' then return body.map { |x| decode(x) } if body.is_a?(Array)
    when 'h'
      if body.is_a?(Array) && body.all? { |pair| pair.is_a?(Array) && pair.length == 2 }
        return body.to_h { |k, x| [decode(k), decode(x)] }
      end
    end
    raise TypeError, 'not a value'
  end

  def self.channel
    @input ||= IO.for_fd(3, 'rb', autoclose: false)
    @output ||= IO.for_fd(4, 'wb', autoclose: false).tap { |io| io.sync = true }
    [@input, @output]
  end

  def self.receive
    line = channel[0].gets
    line && JSON.parse(line)
  end

  def self.send_message(message)
    channel[1].write(JSON.generate(message), "\n")
  end

  # The program's side: answer calls of the method `name` until the checker closes the channel.
  def self.serve(receiver, name)
    unless receiver.respond_to?(name, true)
      send_message(['error', "#{name} is not defined"])
      return
    end
    entry = receiver.method(name)
    send_message(['ready'])
    while (call = receive)
      begin
        result = entry.call(*call[1].map { |x| decode(x) })
      rescue Exception => e # rubocop:disable Lint/RescueException -- whatever it raised, it did not answer
        send_message(['raised', "#{e.class}: #{e.message}"])
        next
      end
      reply = begin
        ['ok', encode(result)]
      rescue StandardError => e
        ['error', "the function returned #{e.message}"]
      end
      send_message(reply)
    end
  end

  # The checker's side (trusted): anything but a well-formed answer ends the tests as failed.
  def self.fail(why)
    $stderr.puts("CandidateFailed: #{why}")
    $stderr.flush
    exit!(1)
  end

  def self.answer
    m = begin
      receive
    rescue StandardError
      fail('a malformed message')
    end
    fail('the program ended before answering') if m.nil?
    fail('a malformed message') unless m.is_a?(Array)
    m
  end

  def self.expect_ready
    m = answer
    fail(m[0] == 'error' ? m[1].to_s : 'the program did not load') unless m[0] == 'ready'
  end

  def self.call(args)
    send_message(['call', args.map { |x| encode(x) }])
    m = answer
    fail("CandidateRaised: #{m[1]}") if m[0] == 'raised'
    fail(m[0] == 'error' ? m[1].to_s : 'a malformed message') unless m[0] == 'ok'
    begin
      decode(m[1])
    rescue StandardError => e
      fail(e.message)
    end
  end
end
