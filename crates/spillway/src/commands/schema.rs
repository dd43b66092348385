pub fn run() -> u8 {
    print!("{}", spillway_stack::schema::json());
    0
}
