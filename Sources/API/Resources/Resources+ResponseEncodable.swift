public import Hummingbird

extension PipelineResource: ResponseEncodable {}
extension FieldResource: ResponseEncodable {}
extension RecordResource: ResponseEncodable {}
extension JobResource: ResponseEncodable {}
extension Page: ResponseEncodable {}
